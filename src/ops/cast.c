/* cast.c — reference kernels; see families.def for what belongs here. */
#include "ops/ops.h"
#include "ops/util.h"

const ops_schema ops_table_cast[] = {
    OPS_TABLE_END
};
