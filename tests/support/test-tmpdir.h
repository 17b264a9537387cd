/* Temporary directories for the C tests: one helper instead of a mkdtemp
 * template and a removal in every test file. */
#pragma once

/* Creates <$TMPDIR or /tmp>/caa-<name>-XXXXXX (mode 0700) and returns its
 * malloc'ed path; aborts when it cannot (a test cannot go on without it). */
char *caa_test_tmpdir_new(const char *name);
/* Removes the tree below dir without following symlinks, then frees dir.
 * Returns 0, or a negative errno when something could not be removed.
 * NULL-safe. */
int caa_test_tmpdir_remove(char *dir);
