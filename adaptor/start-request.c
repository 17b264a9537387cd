/* start-request.json: the part of a CreateVM request StartVM needs
 * (start-request.h). */
#include "start-request.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "annotations.h"
#include "codec.h"
#include "fs.h"
#include "sandbox-id.h"
#include "xalloc.h"

/* Instance types and image names / URIs / resource ids are short in every cloud. */
#define TEXT_FIELD_MAX 1024

static void wipe_free(char *s, size_t len)
{
    if (!s)
        return;
    explicit_bzero(s, len);
    free(s);
}

void caa_start_request_done(caa_start_request *req)
{
    free(req->sandbox_id);
    free(req->machine_type);
    free(req->image);
    wipe_free(req->user_data, req->user_data_len);
    *req = (caa_start_request){0};
}

void caa_start_request_text_free(char *text)
{
    if (text)
        wipe_free(text, strlen(text));
}

static json_t *string_or_null(const char *s)
{
    return s ? json_string(s) : json_null();
}

char *caa_start_request_to_json(const caa_instance_spec *spec)
{
    char *b64 = spec->user_data ? caa_bootdata_base64_encode(spec->user_data, spec->user_data_len) : NULL;
    json_auto_t *o = json_pack("{s:i, s:s, s:o, s:o, s:I, s:I, s:I, s:o}", "version",
                               CAA_START_REQUEST_VERSION, "sandbox_id", spec->sandbox_id, "machine_type",
                               string_or_null(spec->instance_type), "image", string_or_null(spec->image),
                               "vcpus", (json_int_t)spec->vcpus, "memory_mib", (json_int_t)spec->memory_mib,
                               "gpus", (json_int_t)spec->gpus, "user_data", string_or_null(b64));
    caa_start_request_text_free(b64);
    if (!o)
        abort();         /* only on allocation failure: the fields are checked strings */
    if (spec->multi_nic) /* left out otherwise: files stay as older daemons wrote them */
        json_object_set_new(o, "multi_nic", json_true());
    char *text = json_dumps(o, JSON_COMPACT | JSON_SORT_KEYS);
    if (!text)
        abort();
    return text;
}

/* ---------------------------------------------------------------- parsing */

/* An optional text field: a string of printable characters, or null. */
static int text_field(json_t *o, const char *key, char **ret, caa_error **err)
{
    json_t *v = json_object_get(o, key);
    if (!v)
        return caa_error_set(err, -EINVAL, "field \"%s\" is missing", key);
    if (json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return caa_error_set(err, -EINVAL, "field \"%s\" must be a string or null", key);
    const char *s = json_string_value(v);
    size_t len = json_string_length(v);
    if (len == 0 || len > TEXT_FIELD_MAX)
        return caa_error_set(err, -EINVAL, "field \"%s\" must be 1 to %d bytes long", key, TEXT_FIELD_MAX);
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
            return caa_error_set(err, -EINVAL, "field \"%s\" contains control characters", key);
    *ret = xstrdup(s);
    return 0;
}

static int count_field(json_t *o, const char *key, int64_t max, int64_t *ret, caa_error **err)
{
    json_t *v = json_object_get(o, key);
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max)
        return caa_error_set(err, -EINVAL, "field \"%s\" must be an integer in [0, %lld]", key,
                             (long long)max);
    *ret = json_integer_value(v);
    return 0;
}

static int user_data_field(json_t *o, caa_start_request *req, caa_error **err)
{
    json_t *v = json_object_get(o, "user_data");
    if (!v)
        return caa_error_set(err, -EINVAL, "field \"user_data\" is missing");
    if (json_is_null(v))
        return 0;
    if (!json_is_string(v))
        return caa_error_set(err, -EINVAL, "field \"user_data\" must be a base64 string or null");
    void *bytes = NULL;
    size_t n = 0;
    int r = caa_bootdata_base64_decode(json_string_value(v), json_string_length(v),
                                       CAA_START_REQUEST_USER_DATA_MAX, &bytes, &n, err);
    if (r < 0)
        return caa_error_prefix(err, "field \"user_data\"");
    req->user_data = bytes;
    req->user_data_len = n;
    return 0;
}

int caa_start_request_from_json(const char *data, size_t len, const char *expected_id, caa_start_request *ret,
                                caa_error **err)
{
    json_error_t jerr;
    json_auto_t *o = json_loadb(data, len, JSON_REJECT_DUPLICATES, &jerr);
    if (!o)
        return caa_error_set(err, -EINVAL, "not valid JSON (line %d: %s)", jerr.line, jerr.text);
    if (!json_is_object(o))
        return caa_error_set(err, -EINVAL, "top level is not a JSON object");
    json_t *version = json_object_get(o, "version");
    if (!json_is_integer(version) || json_integer_value(version) != CAA_START_REQUEST_VERSION)
        return caa_error_set(err, -EINVAL, "field \"version\" must be %d", CAA_START_REQUEST_VERSION);

    caa_start_request req = {0};
    int r;
    json_t *id = json_object_get(o, "sandbox_id");
    if (!json_is_string(id) || strlen(json_string_value(id)) != json_string_length(id)) {
        r = caa_error_set(err, -EINVAL, "field \"sandbox_id\" is missing or not a string");
        goto fail;
    }
    if ((r = caa_sandbox_id_check(json_string_value(id), err)) < 0) {
        caa_error_prefix(err, "field \"sandbox_id\"");
        goto fail;
    }
    req.sandbox_id = xstrdup(json_string_value(id));
    if (expected_id && strcmp(req.sandbox_id, expected_id) != 0) {
        r = caa_error_set(err, -EINVAL, "sandbox id \"%s\" does not match its directory", req.sandbox_id);
        goto fail;
    }
    if ((r = text_field(o, "machine_type", &req.machine_type, err)) < 0 ||
        (r = text_field(o, "image", &req.image, err)) < 0 ||
        (r = count_field(o, "vcpus", CAA_SPEC_VCPUS_MAX, &req.vcpus, err)) < 0 ||
        (r = count_field(o, "memory_mib", CAA_SPEC_MEMORY_MIB_MAX, &req.memory_mib, err)) < 0 ||
        (r = count_field(o, "gpus", CAA_SPEC_GPUS_MAX, &req.gpus, err)) < 0 ||
        (r = user_data_field(o, &req, err)) < 0)
        goto fail;
    json_t *multi_nic = json_object_get(o, "multi_nic");
    if (multi_nic && !json_is_boolean(multi_nic)) {
        r = caa_error_set(err, -EINVAL, "field \"multi_nic\" must be a boolean");
        goto fail;
    }
    req.multi_nic = json_is_true(multi_nic);
    *ret = req;
    return 0;
fail:
    caa_start_request_done(&req);
    return r;
}

/* ---------------------------------------------------------------- files */

int caa_start_request_save(const char *pod_dir, const caa_instance_spec *spec, caa_error **err)
{
    _cleanup_free_ char *path = xasprintf("%s/%s", pod_dir, CAA_START_REQUEST_FILE);
    char *text = caa_start_request_to_json(spec);
    int r = caa_write_file_atomic(path, text, strlen(text), 0600, err);
    caa_start_request_text_free(text);
    return r;
}

int caa_start_request_load(const char *pod_dir, const char *expected_id, caa_start_request *ret,
                           caa_error **err)
{
    _cleanup_free_ char *path = xasprintf("%s/%s", pod_dir, CAA_START_REQUEST_FILE);
    char *data = NULL;
    size_t len = 0;
    int r = caa_read_file(path, CAA_START_REQUEST_FILE_MAX, 1, &data, &len, err);
    if (r < 0)
        return r;
    r = caa_start_request_from_json(data, len, expected_id, ret, err);
    wipe_free(data, len);
    if (r < 0)
        return caa_error_prefix(err, "'%s'", path);
    return 0;
}
