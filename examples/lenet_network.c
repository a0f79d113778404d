/* lenet_network.c — LeNet-5 built by hand with kiln's network definition API from a
 * tensorrtx-style .wts weight file (no ONNX involved), then run like any kiln model.
 *
 * Build (after `make`, from the repository root):
 *   cc -O2 -Iinclude examples/lenet_network.c build/libkiln.a -lm -lpthread -o build/lenet_network
 * Run:
 *   build/lenet_network tests/data/network/lenet.wts [input.bin]
 * input.bin: raw float32, batch x 1 x 28 x 28 (e.g. tests/data/network/lenet_input.bin); without
 * it a zero image is classified. Weights: tests/data/network/make_wts.py writes .wts files from a
 * PyTorch state_dict; make_test_data.py makes this one (its LeNet class is the twin of this file).
 * tests/unit/test_network.c includes this file (LENET_NO_MAIN) and checks it against ONNX Runtime. */
#include "kiln.h"
#include <stdio.h>
#include <stdlib.h>

/* LeNet-5 on input "data" (dynamic batch x 1 x 28 x 28) with output "prob" (batch x 10). Layer
 * names follow the PyTorch module, so the weights are found as "conv1.weight" and so on. */
static kiln_status lenet_build(const kiln_weights *w, const kiln_load_options *opts, kiln_model **out)
{
    kiln_network *net;
    kiln_status st = kiln_network_create("lenet", &net);
    if (st) return st;
    kiln_network_set_weights(net, w);

    const int64_t dims[4] = {-1, 1, 28, 28};
    kiln_net_tensor x = kiln_network_add_input(net, "data", KILN_DTYPE_FLOAT, 4, dims);

    kiln_conv_desc conv1 = {.out_channels = 6, .kernel_h = 5, .kernel_w = 5,
                            .weight = kiln_net_weights_named("conv1.weight"),
                            .bias = kiln_net_weights_named("conv1.bias")};
    x = kiln_network_add_convolution(net, "conv1", x, &conv1);
    x = kiln_network_add_activation(net, "relu1", x, KILN_ACT_RELU, 0, 0);
    kiln_pool_desc pool1 = {.type = KILN_POOL_MAX, .kernel_h = 2, .kernel_w = 2};
    x = kiln_network_add_pooling(net, "pool1", x, &pool1);

    kiln_conv_desc conv2 = {.out_channels = 16, .kernel_h = 5, .kernel_w = 5,
                            .weight = kiln_net_weights_named("conv2.weight"),
                            .bias = kiln_net_weights_named("conv2.bias")};
    x = kiln_network_add_convolution(net, "conv2", x, &conv2);
    x = kiln_network_add_activation(net, "relu2", x, KILN_ACT_RELU, 0, 0);
    kiln_pool_desc pool2 = {.type = KILN_POOL_AVERAGE, .kernel_h = 2, .kernel_w = 2};
    x = kiln_network_add_pooling(net, "pool2", x, &pool2);

    /* fully connected layers flatten N x 16 x 4 x 4 to N x 256 themselves */
    x = kiln_network_add_fully_connected(net, "fc1", x, 120, kiln_net_weights_named("fc1.weight"),
                                         kiln_net_weights_named("fc1.bias"));
    x = kiln_network_add_activation(net, "relu3", x, KILN_ACT_RELU, 0, 0);
    x = kiln_network_add_fully_connected(net, "fc2", x, 84, kiln_net_weights_named("fc2.weight"),
                                         kiln_net_weights_named("fc2.bias"));
    x = kiln_network_add_activation(net, "relu4", x, KILN_ACT_RELU, 0, 0);
    x = kiln_network_add_fully_connected(net, "fc3", x, 10, kiln_net_weights_named("fc3.weight"),
                                         kiln_net_weights_named("fc3.bias"));
    x = kiln_network_add_softmax(net, "softmax", x, 1);
    kiln_network_mark_output(net, x, "prob");

    /* Errors of any layer above surface here, naming the first layer that failed. */
    st = kiln_network_build(net, opts, out);
    kiln_network_destroy(net); /* the model does not refer to the network */
    return st;
}

#ifndef LENET_NO_MAIN
static float *lenet_read_input(const char *path, int64_t *batch)
{
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long size = ftell(f);
    fseek(f, 0, SEEK_SET);
    const long image = 28 * 28 * (long)sizeof(float);
    float *data = size > 0 && size % image == 0 ? malloc((size_t)size) : NULL;
    if (data && fread(data, 1, (size_t)size, f) != (size_t)size) { free(data); data = NULL; }
    fclose(f);
    *batch = size / image;
    return data;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s lenet.wts [input.bin]\n", argv[0]);
        return 2;
    }
    kiln_weights *w = NULL;
    kiln_model *model = NULL;
    kiln_context *ctx = NULL;
    int rc = 1;
    int64_t batch = 1;
    float *input = argc > 2 ? lenet_read_input(argv[2], &batch) : calloc(28 * 28, sizeof(float));
    if (!input) { fprintf(stderr, "cannot read %s (raw float32, N x 1 x 28 x 28)\n", argc > 2 ? argv[2] : "input"); return 1; }
    if (kiln_weights_load_wts(argv[1], &w) || lenet_build(w, NULL, &model) || kiln_context_create(model, &ctx)) goto done;
    const int64_t dims[4] = {batch, 1, 28, 28};
    if (kiln_context_set_input(ctx, "data", KILN_DTYPE_FLOAT, 4, dims, input, (size_t)batch * 28 * 28 * sizeof(float)) ||
        kiln_context_run(ctx))
        goto done;
    kiln_tensor_view prob;
    if (kiln_context_get_output(ctx, "prob", &prob)) goto done;
    const float *p = prob.data;
    for (int64_t n = 0; n < prob.dims[0]; n++) {
        int best = 0;
        for (int k = 1; k < 10; k++) if (p[n * 10 + k] > p[n * 10 + best]) best = k;
        printf("image %lld: class %d (p = %.4f)\n", (long long)n, best, p[n * 10 + best]);
    }
    rc = 0;
done:
    if (rc) fprintf(stderr, "error: %s\n", kiln_last_error());
    kiln_context_destroy(ctx);
    kiln_model_destroy(model);
    kiln_weights_destroy(w);
    free(input);
    return rc;
}
#endif
