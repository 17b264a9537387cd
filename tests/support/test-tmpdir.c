/* Temporary directories for the C tests (test-tmpdir.h). */
#include "test-tmpdir.h"

#include <stdio.h>
#include <stdlib.h>

#include "error.h"
#include "fs.h"
#include "xalloc.h"

char *caa_test_tmpdir_new(const char *name)
{
    const char *base = getenv("TMPDIR");
    char *dir = xasprintf("%s/caa-%s-XXXXXX", base && *base ? base : "/tmp", name);
    if (!mkdtemp(dir)) {
        perror("mkdtemp");
        abort();
    }
    return dir;
}

int caa_test_tmpdir_remove(char *dir)
{
    if (!dir)
        return 0;
    caa_error *err = NULL;
    int r = caa_rm_rf(dir, &err);
    if (r < 0)
        fprintf(stderr, "removing %s: %s\n", dir, caa_error_msg(err));
    caa_error_free(err);
    free(dir);
    return r;
}
