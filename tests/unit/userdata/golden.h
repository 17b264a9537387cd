/* Golden-file comparison for generated documents. With
 * CAA_REGENERATE_GOLDEN=1 the file is rewritten instead (review the diff). */
#pragma once

#include <stdlib.h>
#include <string.h>

#include "fs.h"
#include "xalloc.h"

static inline void golden_compare(const char *name, const char *text, size_t len)
{
    const char *root = getenv("CAA_SOURCE_ROOT");
    if (!root)
        fail_msg("CAA_SOURCE_ROOT is not set");
    _cleanup_free_ char *path = xasprintf("%s/tests/unit/userdata/golden/%s", root, name);
    const char *regen = getenv("CAA_REGENERATE_GOLDEN");
    if (regen && strcmp(regen, "1") == 0) {
        assert_int_equal(caa_write_file_atomic(path, text, len, 0644, NULL), 0);
        return;
    }
    _cleanup_free_ char *want = NULL;
    size_t want_len = 0;
    caa_error *err = NULL;
    if (caa_read_file(path, 1 << 20, 1, &want, &want_len, &err) < 0)
        fail_msg("reading golden file: %s", caa_error_msg(err));
    if (want_len != len || memcmp(want, text, len) != 0)
        fail_msg("output differs from %s:\n--- got ---\n%s\n--- want ---\n%s", path, text, want);
}
