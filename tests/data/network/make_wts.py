#!/usr/bin/env python3
"""make_wts.py — write tensorrtx-style .wts weight files for kiln_weights_load_wts.

Format: line 1 = number of entries; then one line per entry:
    name count h1 h2 ... hcount
where each h is the big-endian hex of an IEEE-754 float32 (3f800000 = 1.0).

Usage:
    make_wts.py --onnx model.onnx out.wts            # float initializers of an ONNX model
    make_wts.py --state-dict model.pt out.wts        # torch.save(model.state_dict()) file
    make_wts.py --module pkg.mod:factory out.wts     # a module's state_dict: factory() -> nn.Module

Integer tensors (BatchNorm's num_batches_tracked, shape constants) are skipped unless
--keep-int is given, in which case they are written converted to float as tensorrtx's
gen_wts.py does.
"""
import argparse
import struct
import sys

import numpy as np


def write_wts(path, named_arrays, keep_int=False):
    """named_arrays: iterable of (name, numpy array). Returns the number of entries written."""
    entries = []
    for name, arr in named_arrays:
        a = np.asarray(arr)
        if a.dtype.kind not in "fc":
            if not keep_int:
                continue
        if any(c.isspace() for c in name) or not name:
            raise ValueError("entry name %r cannot be written to a .wts file" % name)
        entries.append((name, a.astype(np.float32).reshape(-1)))
    with open(path, "w") as f:
        f.write("%d\n" % len(entries))
        for name, flat in entries:
            f.write("%s %d" % (name, flat.size))
            for v in flat:
                f.write(" " + struct.pack(">f", float(v)).hex())
            f.write("\n")
    return len(entries)


def onnx_initializers(path):
    import onnx
    from onnx import numpy_helper
    m = onnx.load(path)
    for t in m.graph.initializer:
        yield t.name, numpy_helper.to_array(t)


def torch_state_dict(sd):
    for k, v in sd.items():
        yield k, v.detach().cpu().numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    src = ap.add_mutually_exclusive_group(required=True)
    src.add_argument("--onnx", help="ONNX model: export its initializers")
    src.add_argument("--state-dict", help="file written by torch.save(model.state_dict())")
    src.add_argument("--module", help="MODULE:FACTORY returning an nn.Module")
    ap.add_argument("--keep-int", action="store_true", help="also write integer tensors (as floats)")
    ap.add_argument("out", help=".wts file to write")
    a = ap.parse_args()
    if a.onnx:
        arrays = onnx_initializers(a.onnx)
    elif a.state_dict:
        import torch
        arrays = torch_state_dict(torch.load(a.state_dict, map_location="cpu"))
    else:
        import importlib
        mod, fn = a.module.split(":")
        model = getattr(importlib.import_module(mod), fn)()
        arrays = torch_state_dict(model.state_dict())
    n = write_wts(a.out, arrays, a.keep_int)
    print("wrote %d entries to %s" % (n, a.out))


if __name__ == "__main__":
    sys.exit(main())
