/* plan_api.c — kiln_plan_check: would this plan load and run here (header, version, build
 * id, ISA, checksums), decided without decoding the graph. */
#include "plan/plan.h"
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

static kiln_status plan_check_file(const char *path)
{
    if (!path) return core_error(KILN_ERR_INVALID_ARGUMENT, "kiln_plan_check: NULL path");
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return core_error(KILN_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        close(fd);
        return core_error(KILN_ERR_IO, "'%s' is not a regular file", path);
    }
    size_t size = (size_t)sb.st_size;
    kiln_status st;
    if (size == 0) {
        st = core_error(KILN_ERR_PARSE, "not a kiln plan: the file is empty");
    } else {
        void *addr = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (addr == MAP_FAILED) st = core_error(KILN_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
        else {
            st = plan_check_bytes(addr, size, PLAN_VERIFY_ALL, NULL);
            munmap(addr, size);
        }
    }
    close(fd);
    if (st) return core_error_prefix(st, "%s: ", path);
    return KILN_OK;
}

KILN_API kiln_status kiln_plan_check(const char *path, char *why, size_t why_size)
{
    kiln_status st = plan_check_file(path);
    if (why && why_size) snprintf(why, why_size, "%s", st ? core_error_text() : "ok");
    return st;
}
