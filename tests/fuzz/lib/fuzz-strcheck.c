/* Fuzz target lib-strcheck: the length-checked string helper and the strict
 * protobuf walk built on it never yield a string shorter than its bytes.
 *  - caa_str_from_bytes succeeds exactly when the input holds no NUL, and
 *    then returns all of it; caa_str_make_utf8 keeps its length and leaves
 *    valid UTF-8 (valid sequences untouched);
 *  - when the input as a CreateVMRequest passes caa_pb_check_strings and
 *    decodes, every string protobuf-c returns is as long as the walk counted
 *    (the fields are summed the same way), so no string was cut. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "hypervisor.pb-c.h"
#include "pb-strict.h"
#include "strcheck.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static size_t str_len(const char *s)
{
    return s ? strlen(s) : 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *s = NULL;
    int r = caa_str_from_bytes("fuzz", data, size, &s, NULL);
    assert((r == 0) == (memchr(data, 0, size) == NULL));
    if (r == 0) {
        assert(strlen(s) == size && memcmp(s, data, size) == 0);
        /* Made valid UTF-8 in place: same length, and valid means unchanged. */
        caa_str_make_utf8(s);
        assert(strlen(s) == size);
        for (size_t i = 0; i < size;) {
            size_t n = caa_utf8_seq_len((const unsigned char *)s + i, size - i);
            assert(n > 0);
            if (n > 1 || (unsigned char)data[i] < 0x80)
                assert(memcmp(s + i, data + i, n) == 0);
            i += n;
        }
        free(s);
    }

    caa_pb_stats st;
    if (caa_pb_check_strings(&hypervisor__create_vmrequest__descriptor, data, size, &st, NULL) < 0)
        return 0;
    Hypervisor__CreateVMRequest *m = hypervisor__create_vmrequest__unpack(NULL, size, data);
    if (!m)
        return 0;
    /* Singular fields may repeat on the wire (the last wins), so the decoded
     * total is at most the walked one; each decoded string must be whole,
     * which re-walking its own encoding proves. */
    size_t decoded = str_len(m->id) + str_len(m->networknamespacepath);
    for (size_t i = 0; i < m->n_annotations; i++)
        decoded += str_len(m->annotations[i]->key) + str_len(m->annotations[i]->value);
    assert(decoded <= st.string_bytes && m->n_annotations <= st.messages);
    size_t n = hypervisor__create_vmrequest__get_packed_size(m);
    uint8_t *buf = malloc(n ? n : 1);
    hypervisor__create_vmrequest__pack(m, buf);
    caa_pb_stats again;
    assert(caa_pb_check_strings(&hypervisor__create_vmrequest__descriptor, buf, n, &again, NULL) == 0);
    assert(again.string_bytes == decoded);
    free(buf);
    hypervisor__create_vmrequest__free_unpacked(m, NULL);
    return 0;
}
