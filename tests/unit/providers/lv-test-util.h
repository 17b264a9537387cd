/* Small helpers for the libvirt provider tests: run a command, temp files. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

/* Runs argv (no shell), captures stdout+stderr (malloc'd, NUL-terminated) and
 * returns the exit status, or -1 when it could not run. 127: not installed. */
int lvt_run(char *const argv[], char **ret_output);
/* Whether an executable is on PATH. */
bool lvt_have(const char *prog);
/* Writes data to a new file in a fresh temp dir; returns its path (malloc'd). */
char *lvt_write_temp(const char *name, const void *data, size_t len);
/* Removes the file and its temp dir. */
void lvt_remove_temp(char *path);
/* Reads a whole file (malloc'd, NUL-terminated) or NULL. */
char *lvt_read_file(const char *path, size_t *ret_len);
/* A TAP comment: every line of the formatted text prefixed with "# ". */
void lvt_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
