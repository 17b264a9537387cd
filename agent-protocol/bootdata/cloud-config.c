#include "cloud-config.h"

#include <errno.h>
#include <stdbool.h>
#include <string.h>

#include <yaml.h>

#include "buf.h"
#include "xalloc.h"

caa_cloud_config *caa_cloud_config_new(void)
{
    return xnew0(caa_cloud_config, 1);
}

void caa_cloud_config_free(caa_cloud_config *cc)
{
    if (!cc)
        return;
    for (size_t i = 0; i < cc->n_files; i++) {
        free(cc->files[i].path);
        free(cc->files[i].content);
    }
    free(cc->files);
    free(cc);
}

void caa_cloud_config_add(caa_cloud_config *cc, const char *path, const void *content, size_t len)
{
    cc->files = xrealloc(cc->files, (cc->n_files + 1) * sizeof(*cc->files));
    caa_cloud_file *f = &cc->files[cc->n_files++];
    f->path = xstrdup(path);
    f->content = xmalloc(len + 1);
    if (len)
        memcpy(f->content, content, len);
    f->content[len] = '\0';
    f->content_len = len;
}

const caa_cloud_file *caa_cloud_config_find(const caa_cloud_config *cc, const char *path)
{
    for (size_t i = 0; i < cc->n_files; i++)
        if (strcmp(cc->files[i].path, path) == 0)
            return &cc->files[i];
    return NULL;
}

/* ---- emitter ---- */

static int write_handler(void *data, unsigned char *buffer, size_t size)
{
    caa_buf_append(data, buffer, size);
    return 1;
}

/* yaml_emitter_emit() consumes the event even when it fails. */
static bool emit_scalar(yaml_emitter_t *em, const char *value, size_t len, yaml_scalar_style_t style)
{
    yaml_event_t ev;
    if (!yaml_scalar_event_initialize(&ev, NULL, NULL, (yaml_char_t *)value, (int)len, 1, 1, style))
        return false;
    return yaml_emitter_emit(em, &ev);
}

static bool emit_document(yaml_emitter_t *em, const caa_cloud_config *cc)
{
    yaml_event_t ev;
    if (!yaml_stream_start_event_initialize(&ev, YAML_UTF8_ENCODING) || !yaml_emitter_emit(em, &ev))
        return false;
    if (!yaml_document_start_event_initialize(&ev, NULL, NULL, NULL, 1) || !yaml_emitter_emit(em, &ev))
        return false;
    if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
        !yaml_emitter_emit(em, &ev))
        return false;
    if (!emit_scalar(em, "write_files", strlen("write_files"), YAML_PLAIN_SCALAR_STYLE))
        return false;
    if (!yaml_sequence_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_SEQUENCE_STYLE) ||
        !yaml_emitter_emit(em, &ev))
        return false;
    for (size_t i = 0; i < cc->n_files; i++) {
        const caa_cloud_file *f = &cc->files[i];
        if (!yaml_mapping_start_event_initialize(&ev, NULL, NULL, 1, YAML_BLOCK_MAPPING_STYLE) ||
            !yaml_emitter_emit(em, &ev))
            return false;
        /* libyaml falls back to a quoted style by itself when a value cannot
         * be written plain or as a literal block (empty content, trailing
         * spaces, control characters). */
        if (!emit_scalar(em, "path", 4, YAML_PLAIN_SCALAR_STYLE) ||
            !emit_scalar(em, f->path, strlen(f->path), YAML_PLAIN_SCALAR_STYLE) ||
            !emit_scalar(em, "content", 7, YAML_PLAIN_SCALAR_STYLE) ||
            !emit_scalar(em, f->content, f->content_len, YAML_LITERAL_SCALAR_STYLE))
            return false;
        if (!yaml_mapping_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
            return false;
    }
    if (!yaml_sequence_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
        return false;
    if (!yaml_mapping_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
        return false;
    if (!yaml_document_end_event_initialize(&ev, 1) || !yaml_emitter_emit(em, &ev))
        return false;
    if (!yaml_stream_end_event_initialize(&ev) || !yaml_emitter_emit(em, &ev))
        return false;
    return yaml_emitter_flush(em);
}

int caa_cloud_config_emit(const caa_cloud_config *cc, char **ret, size_t *ret_len, caa_error **err)
{
    for (size_t i = 0; i < cc->n_files; i++)
        if (cc->files[i].content_len > CAA_CLOUD_CONFIG_MAX_SIZE)
            return caa_error_set(err, -EFBIG, "cloud-config: content of '%s' is too large",
                                 cc->files[i].path);

    caa_buf out = {0};
    /* cloud-init recognises user-data by this first line; YAML sees a comment. */
    caa_buf_append(&out, CAA_CLOUD_CONFIG_HEADER, strlen(CAA_CLOUD_CONFIG_HEADER));

    yaml_emitter_t em;
    if (!yaml_emitter_initialize(&em))
        caa_oom();
    yaml_emitter_set_output(&em, write_handler, &out);
    yaml_emitter_set_unicode(&em, 1);
    yaml_emitter_set_indent(&em, 2);
    yaml_emitter_set_width(&em, -1);
    yaml_emitter_set_break(&em, YAML_LN_BREAK);
    bool ok = emit_document(&em, cc);
    int r = 0;
    if (!ok)
        r = caa_error_set(err, -EINVAL, "cloud-config: cannot emit YAML: %s",
                          em.problem ? em.problem : "unknown emitter error");
    yaml_emitter_delete(&em);
    if (r < 0) {
        free(out.data);
        return r;
    }
    *ret = out.data;
    if (ret_len)
        *ret_len = out.len;
    return 0;
}

/* ---- strict parser ---- */

typedef struct parser {
    yaml_parser_t yp;
    yaml_event_t ev;
    bool have_ev;
    caa_error **err;
} parser;

/* A printable, bounded rendering of a document key for error messages. */
static void safe_key(const yaml_event_t *ev, char *buf, size_t size)
{
    size_t n = ev->data.scalar.length;
    size_t j = 0;
    for (size_t i = 0; i < n && j + 4 < size; i++) {
        unsigned char c = ev->data.scalar.value[i];
        buf[j++] = (c >= 0x20 && c < 0x7f) ? (char)c : '?';
    }
    if (j + 4 >= size && n > j) {
        buf[j++] = '.';
        buf[j++] = '.';
        buf[j++] = '.';
    }
    buf[j] = '\0';
}

static unsigned long ev_line(const parser *p)
{
    return (unsigned long)p->ev.start_mark.line + 1;
}

static int next_event(parser *p)
{
    if (p->have_ev) {
        yaml_event_delete(&p->ev);
        p->have_ev = false;
    }
    if (!yaml_parser_parse(&p->yp, &p->ev))
        return caa_error_set(p->err, -EINVAL, "cloud-config: invalid YAML at line %lu: %s",
                             (unsigned long)p->yp.problem_mark.line + 1,
                             p->yp.problem ? p->yp.problem : "parse error");
    p->have_ev = true;
    const yaml_char_t *anchor = NULL, *tag = NULL;
    switch (p->ev.type) {
    case YAML_ALIAS_EVENT:
        return caa_error_set(p->err, -EINVAL, "cloud-config: aliases are not allowed (line %lu)", ev_line(p));
    case YAML_SCALAR_EVENT:
        anchor = p->ev.data.scalar.anchor;
        tag = p->ev.data.scalar.tag;
        if (tag && strcmp((const char *)tag, YAML_STR_TAG) == 0)
            tag = NULL;
        break;
    case YAML_SEQUENCE_START_EVENT:
        anchor = p->ev.data.sequence_start.anchor;
        tag = p->ev.data.sequence_start.tag;
        break;
    case YAML_MAPPING_START_EVENT:
        anchor = p->ev.data.mapping_start.anchor;
        tag = p->ev.data.mapping_start.tag;
        break;
    default:
        break;
    }
    if (anchor)
        return caa_error_set(p->err, -EINVAL, "cloud-config: anchors are not allowed (line %lu)", ev_line(p));
    if (tag)
        return caa_error_set(p->err, -EINVAL, "cloud-config: explicit tags are not allowed (line %lu)",
                             ev_line(p));
    return 0;
}

/* A plain scalar that YAML reads as null (Go's yaml gives "" for it). */
static bool is_null_scalar(const yaml_event_t *ev)
{
    if (ev->type != YAML_SCALAR_EVENT || ev->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return false;
    const char *v = (const char *)ev->data.scalar.value;
    return ev->data.scalar.length == 0 || strcmp(v, "~") == 0 || strcmp(v, "null") == 0 ||
           strcmp(v, "Null") == 0 || strcmp(v, "NULL") == 0;
}

static bool scalar_is(const yaml_event_t *ev, const char *s)
{
    return ev->data.scalar.length == strlen(s) &&
           memcmp(ev->data.scalar.value, s, ev->data.scalar.length) == 0;
}

static int parse_item(parser *p, caa_cloud_config *cc)
{
    _cleanup_free_ char *path = NULL, *content = NULL;
    size_t content_len = 0;
    bool have_content = false;
    unsigned long item_line = ev_line(p);
    int r;
    for (;;) {
        if ((r = next_event(p)) < 0)
            return r;
        if (p->ev.type == YAML_MAPPING_END_EVENT)
            break;
        if (p->ev.type != YAML_SCALAR_EVENT)
            return caa_error_set(p->err, -EINVAL,
                                 "cloud-config: write_files item keys must be strings (line %lu)",
                                 ev_line(p));
        bool is_path = scalar_is(&p->ev, "path");
        if (!is_path && !scalar_is(&p->ev, "content")) {
            char key[48];
            safe_key(&p->ev, key, sizeof(key));
            return caa_error_set(p->err, -EINVAL,
                                 "cloud-config: unknown key '%s' in write_files item (line %lu)", key,
                                 ev_line(p));
        }
        if ((is_path && path) || (!is_path && have_content))
            return caa_error_set(p->err, -EINVAL,
                                 "cloud-config: duplicate key '%s' in write_files item (line %lu)",
                                 is_path ? "path" : "content", ev_line(p));
        if ((r = next_event(p)) < 0)
            return r;
        if (p->ev.type != YAML_SCALAR_EVENT)
            return caa_error_set(p->err, -EINVAL, "cloud-config: '%s' must be a string (line %lu)",
                                 is_path ? "path" : "content", ev_line(p));
        bool null = is_null_scalar(&p->ev);
        size_t n = null ? 0 : p->ev.data.scalar.length;
        char *v = xmalloc(n + 1);
        memcpy(v, p->ev.data.scalar.value, n);
        v[n] = '\0';
        if (is_path) {
            if (n == 0 || memchr(v, '\0', n)) {
                free(v);
                return caa_error_set(p->err, -EINVAL, "cloud-config: empty or invalid path (line %lu)",
                                     ev_line(p));
            }
            path = v;
        } else {
            content = v;
            content_len = n;
            have_content = true;
        }
    }
    if (!path)
        return caa_error_set(p->err, -EINVAL, "cloud-config: write_files item without path (line %lu)",
                             item_line);
    if (!have_content)
        return caa_error_set(p->err, -EINVAL, "cloud-config: write_files item without content (line %lu)",
                             item_line);
    if (cc->n_files >= CAA_CLOUD_CONFIG_MAX_FILES)
        return caa_error_set(p->err, -EINVAL, "cloud-config: more than %d files", CAA_CLOUD_CONFIG_MAX_FILES);
    cc->files = xrealloc(cc->files, (cc->n_files + 1) * sizeof(*cc->files));
    cc->files[cc->n_files++] = (caa_cloud_file){TAKE_PTR(path), TAKE_PTR(content), content_len};
    return 0;
}

static int parse_write_files(parser *p, caa_cloud_config *cc)
{
    int r;
    if ((r = next_event(p)) < 0)
        return r;
    if (is_null_scalar(&p->ev))
        return 0;
    if (p->ev.type != YAML_SEQUENCE_START_EVENT)
        return caa_error_set(p->err, -EINVAL, "cloud-config: write_files must be a list (line %lu)",
                             ev_line(p));
    for (;;) {
        if ((r = next_event(p)) < 0)
            return r;
        if (p->ev.type == YAML_SEQUENCE_END_EVENT)
            return 0;
        if (p->ev.type != YAML_MAPPING_START_EVENT)
            return caa_error_set(p->err, -EINVAL,
                                 "cloud-config: write_files items must be mappings (line %lu)", ev_line(p));
        if ((r = parse_item(p, cc)) < 0)
            return r;
    }
}

static int parse_root(parser *p, caa_cloud_config *cc)
{
    bool seen = false;
    int r;
    for (;;) {
        if ((r = next_event(p)) < 0)
            return r;
        if (p->ev.type == YAML_MAPPING_END_EVENT)
            return 0;
        if (p->ev.type != YAML_SCALAR_EVENT)
            return caa_error_set(p->err, -EINVAL, "cloud-config: top-level keys must be strings (line %lu)",
                                 ev_line(p));
        if (!scalar_is(&p->ev, "write_files")) {
            char key[48];
            safe_key(&p->ev, key, sizeof(key));
            return caa_error_set(p->err, -EINVAL, "cloud-config: unknown top-level key '%s' (line %lu)", key,
                                 ev_line(p));
        }
        if (seen)
            return caa_error_set(p->err, -EINVAL, "cloud-config: duplicate key 'write_files' (line %lu)",
                                 ev_line(p));
        seen = true;
        if ((r = parse_write_files(p, cc)) < 0)
            return r;
    }
}

static int parse_stream(parser *p, caa_cloud_config *cc)
{
    int r;
    if ((r = next_event(p)) < 0)
        return r;
    if (p->ev.type != YAML_STREAM_START_EVENT)
        return caa_error_set(p->err, -EINVAL, "cloud-config: invalid YAML stream");
    if ((r = next_event(p)) < 0)
        return r;
    if (p->ev.type == YAML_STREAM_END_EVENT)
        return 0; /* only comments: no files */
    if (p->ev.type != YAML_DOCUMENT_START_EVENT)
        return caa_error_set(p->err, -EINVAL, "cloud-config: invalid YAML stream");
    if ((r = next_event(p)) < 0)
        return r;
    if (p->ev.type == YAML_MAPPING_START_EVENT) {
        if ((r = parse_root(p, cc)) < 0)
            return r;
    } else if (!is_null_scalar(&p->ev)) {
        return caa_error_set(p->err, -EINVAL, "cloud-config: the document must be a mapping (line %lu)",
                             ev_line(p));
    }
    if ((r = next_event(p)) < 0)
        return r;
    if (p->ev.type != YAML_DOCUMENT_END_EVENT)
        return caa_error_set(p->err, -EINVAL, "cloud-config: invalid YAML document");
    if ((r = next_event(p)) < 0)
        return r;
    if (p->ev.type != YAML_STREAM_END_EVENT)
        return caa_error_set(p->err, -EINVAL, "cloud-config: more than one YAML document");
    return 0;
}

int caa_cloud_config_parse(const void *data, size_t len, caa_cloud_config **ret, caa_error **err)
{
    if (len > CAA_CLOUD_CONFIG_MAX_SIZE)
        return caa_error_set(err, -EFBIG, "cloud-config: document is %zu bytes, more than the %d allowed",
                             len, CAA_CLOUD_CONFIG_MAX_SIZE);
    parser p = {.err = err};
    if (!yaml_parser_initialize(&p.yp))
        caa_oom();
    yaml_parser_set_input_string(&p.yp, data, len);
    _cleanup_cloud_config_ caa_cloud_config *cc = caa_cloud_config_new();
    int r = parse_stream(&p, cc);
    if (p.have_ev)
        yaml_event_delete(&p.ev);
    yaml_parser_delete(&p.yp);
    if (r < 0)
        return r;
    *ret = TAKE_PTR(cc);
    return 0;
}
