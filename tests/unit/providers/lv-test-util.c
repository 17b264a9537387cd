#include "lv-test-util.h"

#include <stdbool.h>

#include <fcntl.h>
#include <stdarg.h>
#include <libgen.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "test-tmpdir.h"

extern char **environ;

int lvt_run(char *const argv[], char **ret_output)
{
    char tmpl[] = "/tmp/lvt-out-XXXXXX";
    int fd = mkstemp(tmpl);
    if (fd < 0)
        return -1;
    unlink(tmpl);
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, fd, 1);
    posix_spawn_file_actions_adddup2(&fa, fd, 2);
    pid_t pid;
    int r = posix_spawnp(&pid, argv[0], &fa, NULL, argv, environ);
    posix_spawn_file_actions_destroy(&fa);
    if (r != 0) {
        close(fd);
        return 127;
    }
    int status;
    while (waitpid(pid, &status, 0) < 0)
        ;
    off_t len = lseek(fd, 0, SEEK_END);
    char *out = malloc((size_t)len + 1);
    if (pread(fd, out, (size_t)len, 0) != len)
        len = 0;
    out[len] = '\0';
    close(fd);
    if (ret_output)
        *ret_output = out;
    else
        free(out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

bool lvt_have(const char *prog)
{
    const char *path = getenv("PATH");
    char *copy = strdup(path ? path : "/usr/bin:/bin");
    bool found = false;
    for (char *save = NULL, *dir = strtok_r(copy, ":", &save); dir && !found;
         dir = strtok_r(NULL, ":", &save)) {
        char full[4096];
        snprintf(full, sizeof(full), "%s/%s", dir, prog);
        found = access(full, X_OK) == 0;
    }
    free(copy);
    return found;
}

char *lvt_write_temp(const char *name, const void *data, size_t len)
{
    char *dir = caa_test_tmpdir_new("lvt");
    char *path = NULL;
    if (asprintf(&path, "%s/%s", dir, name) < 0)
        path = NULL;
    FILE *f = path ? fopen(path, "wbe") : NULL;
    bool ok = f && fwrite(data, 1, len, f) == len;
    if (f)
        ok = fclose(f) == 0 && ok;
    if (!ok) {
        free(path);
        caa_test_tmpdir_remove(dir);
        return NULL;
    }
    free(dir);
    return path;
}

void lvt_remove_temp(char *path)
{
    if (!path)
        return;
    caa_test_tmpdir_remove(strdup(dirname(path)));
    free(path);
}

char *lvt_read_file(const char *path, size_t *ret_len)
{
    FILE *f = fopen(path, "rbe");
    if (!f)
        return NULL;
    size_t cap = 4096, len = 0, n;
    char *buf = malloc(cap + 1);
    while ((n = fread(buf + len, 1, cap - len, f)) > 0) {
        len += n;
        if (len == cap) {
            cap *= 2;
            buf = realloc(buf, cap + 1);
        }
    }
    fclose(f);
    buf[len] = '\0';
    if (ret_len)
        *ret_len = len;
    return buf;
}

void lvt_note(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *text = NULL;
    if (vasprintf(&text, fmt, ap) < 0)
        text = NULL;
    va_end(ap);
    if (!text)
        return;
    for (char *line = text, *nl; line && *line; line = nl ? nl + 1 : NULL) {
        nl = strchr(line, '\n');
        printf("# %.*s\n", nl ? (int)(nl - line) : (int)strlen(line), line);
    }
    fflush(stdout);
    free(text);
}
