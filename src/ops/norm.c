/* norm.c — reference kernels; see families.def for what belongs here. */
#include "ops/ops.h"
#include "ops/util.h"

const ops_schema ops_table_norm[] = {
    OPS_TABLE_END
};
