/* ttRPC codec: header, incremental frame reader, envelopes, published vectors. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "ttrpc-codec.h"
#include "ttrpc-test-util.h"
#include "xalloc.h"

/* ttrpc-rust src/proto.rs test vectors (wire-protocols.md §7.1). */
#define RUST_REQUEST_HEADER "00000043 00123456 01 ef"
#define RUST_REQUEST_BODY                                                                                    \
    "0a11 677270632e546573745365727669636573 1204 54657374 1a09 010203040506070809 2080dac409 2a18 0a09 "    \
    "746573745f6b657931 120b 746573745f76616c756531"
#define RUST_OVERSIZE_HEADER "10000000 00000003 02 ef"

/* Frames collected from a reader, bodies copied. */
typedef struct collected {
    size_t n;
    size_t n_oversize;
    ttrpc_frame_header h[16];
    uint8_t *body[16];
} collected;

static void collected_done(collected *c)
{
    for (size_t i = 0; i < c->n; i++)
        free(c->body[i]);
}

static void feed(ttrpc_frame_reader *r, const uint8_t *data, size_t len, collected *out)
{
    for (;;) {
        ttrpc_frame_header h;
        const uint8_t *body;
        int res = ttrpc_frame_reader_next(r, &data, &len, &h, &body);
        if (res == TTRPC_READ_MORE)
            break;
        assert_true(out->n < 16);
        out->h[out->n] = h;
        if (res == TTRPC_READ_OVERSIZE) {
            out->n_oversize++;
            out->body[out->n++] = NULL;
            continue;
        }
        assert_int_equal(res, TTRPC_READ_FRAME);
        out->body[out->n++] = h.length ? xmemdup(body, h.length) : NULL;
    }
    assert_int_equal(len, 0);
}

static uint8_t *three_frames(size_t *ret_len)
{
    return tu_hex("00000003 00000001 01 00 616263"
                  "00000000 00000003 02 00"
                  "00000005 00000005 03 05 0102030405",
                  ret_len);
}

static void check_three(const collected *c)
{
    assert_int_equal(c->n, 3);
    assert_int_equal(c->n_oversize, 0);
    assert_int_equal(c->h[0].length, 3);
    assert_int_equal(c->h[0].stream_id, 1);
    assert_int_equal(c->h[0].type, TTRPC_TYPE_REQUEST);
    assert_memory_equal(c->body[0], "abc", 3);
    assert_int_equal(c->h[1].length, 0);
    assert_int_equal(c->h[1].stream_id, 3);
    assert_int_equal(c->h[1].type, TTRPC_TYPE_RESPONSE);
    assert_int_equal(c->h[2].stream_id, 5);
    assert_int_equal(c->h[2].type, TTRPC_TYPE_DATA);
    assert_int_equal(c->h[2].flags, TTRPC_FLAG_REMOTE_CLOSED | TTRPC_FLAG_NO_DATA);
    assert_memory_equal(c->body[2], "\x01\x02\x03\x04\x05", 5);
}

static void test_header_roundtrip(void **state)
{
    (void)state;
    ttrpc_frame_header h = {.length = 0x00abcdef, .stream_id = 0xfedcba98, .type = 3, .flags = 0x05}, d;
    uint8_t buf[TTRPC_HEADER_SIZE];
    ttrpc_header_encode(&h, buf);
    assert_memory_equal(buf, "\x00\xab\xcd\xef\xfe\xdc\xba\x98\x03\x05", TTRPC_HEADER_SIZE);
    ttrpc_header_decode(buf, &d);
    assert_int_equal(d.length, h.length);
    assert_int_equal(d.stream_id, h.stream_id);
    assert_int_equal(d.type, h.type);
    assert_int_equal(d.flags, h.flags);
}

static void test_reader_one_byte_chunks(void **state)
{
    (void)state;
    size_t len;
    uint8_t *all = three_frames(&len);
    ttrpc_frame_reader r;
    ttrpc_frame_reader_init(&r);
    collected c = {0};
    for (size_t i = 0; i < len; i++) {
        feed(&r, all + i, 1, &c);
        /* The frame boundary is the only place the reader is idle. */
        bool boundary = i + 1 == 13 || i + 1 == 23 || i + 1 == len;
        assert_int_equal(ttrpc_frame_reader_idle(&r), boundary);
    }
    check_three(&c);
    collected_done(&c);
    ttrpc_frame_reader_done(&r);
    free(all);
}

static void test_reader_one_chunk(void **state)
{
    (void)state;
    size_t len;
    uint8_t *all = three_frames(&len);
    ttrpc_frame_reader r;
    ttrpc_frame_reader_init(&r);
    collected c = {0};
    feed(&r, all, len, &c);
    check_three(&c);
    assert_true(ttrpc_frame_reader_idle(&r));
    /* Whole frames in one chunk are handed out without buffering. */
    assert_null(r.body);
    collected_done(&c);
    ttrpc_frame_reader_done(&r);
    free(all);
}

static void test_reader_odd_splits(void **state)
{
    (void)state;
    size_t len;
    uint8_t *all = three_frames(&len);
    for (size_t split = 1; split < len; split++) {
        ttrpc_frame_reader r;
        ttrpc_frame_reader_init(&r);
        collected c = {0};
        feed(&r, all, split, &c);
        feed(&r, all + split, len - split, &c);
        check_three(&c);
        collected_done(&c);
        ttrpc_frame_reader_done(&r);
    }
    free(all);
}

static void test_reader_oversize_skip(void **state)
{
    (void)state;
    const uint32_t big = TTRPC_MESSAGE_LENGTH_MAX + 1000;
    ttrpc_frame_reader r;
    ttrpc_frame_reader_init(&r);
    collected c = {0};
    size_t hl;
    uint8_t *hdr = tu_hex("00401000 00000007 01 00", &hl); /* 4 MiB + 4096 */
    (void)big;
    feed(&r, hdr, hl, &c);
    assert_int_equal(c.n_oversize, 1);
    assert_int_equal(c.h[0].length, TTRPC_MESSAGE_LENGTH_MAX + 4096);
    assert_int_equal(c.h[0].stream_id, 7);
    assert_false(ttrpc_frame_reader_idle(&r));

    /* The body is counted off, never buffered. */
    uint8_t *junk = xcalloc(1, 64 * 1024);
    size_t left = TTRPC_MESSAGE_LENGTH_MAX + 4096;
    while (left > 0) {
        size_t n = left < 64 * 1024 - 1 ? left : 64 * 1024 - 1;
        feed(&r, junk, n, &c);
        assert_null(r.body);
        assert_int_equal(r.body_cap, 0);
        left -= n;
    }
    assert_true(ttrpc_frame_reader_idle(&r));
    assert_int_equal(c.n, 1);

    /* The next frame comes out fine. */
    size_t fl;
    uint8_t *next = tu_hex("00000002 00000009 01 00 0a00", &fl);
    feed(&r, next, fl, &c);
    assert_int_equal(c.n, 2);
    assert_int_equal(c.h[1].stream_id, 9);
    assert_memory_equal(c.body[1], "\x0a\x00", 2);

    collected_done(&c);
    ttrpc_frame_reader_done(&r);
    free(junk);
    free(hdr);
    free(next);
}

static void test_reader_max_length_accepted(void **state)
{
    (void)state;
    ttrpc_frame_reader r;
    ttrpc_frame_reader_init(&r);
    size_t len = TTRPC_HEADER_SIZE + TTRPC_MESSAGE_LENGTH_MAX;
    uint8_t *buf = xcalloc(1, len);
    ttrpc_frame_header h = {.length = TTRPC_MESSAGE_LENGTH_MAX, .stream_id = 1, .type = 1};
    ttrpc_header_encode(&h, buf);
    buf[len - 1] = 0x5a;
    /* Split so the body is buffered across chunks. */
    const uint8_t *p = buf;
    size_t n = 1000;
    ttrpc_frame_header got;
    const uint8_t *body;
    assert_int_equal(ttrpc_frame_reader_next(&r, &p, &n, &got, &body), TTRPC_READ_MORE);
    n = len - 1000;
    assert_int_equal(ttrpc_frame_reader_next(&r, &p, &n, &got, &body), TTRPC_READ_FRAME);
    assert_int_equal(got.length, TTRPC_MESSAGE_LENGTH_MAX);
    assert_int_equal(body[TTRPC_MESSAGE_LENGTH_MAX - 1], 0x5a);
    assert_int_equal(n, 0);
    assert_int_equal(ttrpc_frame_reader_next(&r, &p, &n, &got, &body), TTRPC_READ_MORE);
    assert_null(r.body); /* released once the caller came back */
    ttrpc_frame_reader_done(&r);
    free(buf);
}

static void test_reader_truncated_header(void **state)
{
    (void)state;
    ttrpc_frame_reader r;
    ttrpc_frame_reader_init(&r);
    collected c = {0};
    size_t len;
    uint8_t *part = tu_hex("00000003 000000", &len);
    feed(&r, part, len, &c);
    assert_int_equal(c.n, 0);
    assert_false(ttrpc_frame_reader_idle(&r));
    /* and a truncated body */
    ttrpc_frame_reader_done(&r);
    ttrpc_frame_reader_init(&r);
    free(part);
    part = tu_hex("00000003 00000001 01 00 6162", &len);
    feed(&r, part, len, &c);
    assert_int_equal(c.n, 0);
    assert_false(ttrpc_frame_reader_idle(&r));
    ttrpc_frame_reader_done(&r);
    free(part);
}

static void test_rust_vectors(void **state)
{
    (void)state;
    size_t hl, bl;
    uint8_t *hdr = tu_hex(RUST_REQUEST_HEADER, &hl);
    uint8_t *body = tu_hex(RUST_REQUEST_BODY, &bl);
    assert_int_equal(bl, 67);
    uint8_t *frame = xmalloc(hl + bl);
    memcpy(frame, hdr, hl);
    memcpy(frame + hl, body, bl);

    ttrpc_frame_reader r;
    ttrpc_frame_reader_init(&r);
    collected c = {0};
    feed(&r, frame, hl + bl, &c);
    assert_int_equal(c.n, 1);
    assert_int_equal(c.h[0].length, 0x43);
    assert_int_equal(c.h[0].stream_id, 0x123456);
    assert_int_equal(c.h[0].type, TTRPC_TYPE_REQUEST);
    assert_int_equal(c.h[0].flags, 0xef);

    caa_error *err = NULL;
    Ttrpc__Request *req = ttrpc_request_decode(c.body[0], c.h[0].length, &err);
    assert_non_null(req);
    assert_null(err);
    assert_string_equal(req->service, "grpc.TestServices");
    assert_string_equal(req->method, "Test");
    assert_int_equal(req->payload.len, 9);
    assert_memory_equal(req->payload.data, "\x01\x02\x03\x04\x05\x06\x07\x08\x09", 9);
    assert_int_equal(req->timeout_nano, 20000000);
    assert_int_equal(req->n_metadata, 1);
    assert_string_equal(req->metadata[0]->key, "test_key1");
    assert_string_equal(req->metadata[0]->value, "test_value1");

    /* Our encoder produces the same 67 bytes. */
    ttrpc_kv md[] = {{"test_key1", "test_value1"}};
    size_t el;
    uint8_t *enc = ttrpc_request_encode("grpc.TestServices", "Test", req->payload.data, req->payload.len,
                                        20000000, md, 1, &el);
    assert_int_equal(el, 67);
    assert_memory_equal(enc, body, 67);
    int64_t t = -1;
    assert_int_equal(ttrpc_request_peek_timeout(body, bl, &t, NULL), 0);
    assert_int_equal(t, 20000000);

    /* The 0x10000000 header is oversize. */
    free(hdr);
    hdr = tu_hex(RUST_OVERSIZE_HEADER, &hl);
    collected o = {0};
    feed(&r, hdr, hl, &o);
    assert_int_equal(o.n_oversize, 1);
    assert_int_equal(o.h[0].length, 0x10000000);
    assert_int_equal(o.h[0].stream_id, 3);
    assert_int_equal(o.h[0].type, TTRPC_TYPE_RESPONSE);
    assert_int_equal(o.h[0].flags, 0xef);
    char msg[128];
    ttrpc_oversize_message(o.h[0].length, msg, sizeof(msg));
    assert_string_equal(msg, "message length 268435456 exceed maximum message size of 4194304");

    ttrpc_request_free(req);
    free(enc);
    collected_done(&c);
    ttrpc_frame_reader_done(&r);
    free(frame);
    free(hdr);
    free(body);
}

static void test_request_decode_garbage(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "0a",                        /* truncated length */
        "0a05 6162",                 /* string shorter than its length */
        "ff",                        /* truncated key varint */
        "00",                        /* field number 0 */
        "0b 00",                     /* group start (wire type 3) */
        "20 ffffffffffffffffffff01", /* varint longer than 10 bytes */
        "8000 00",                   /* field 0 behind an over-long tag */
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        size_t len;
        uint8_t *b = tu_hex(bad[i], &len);
        caa_error *err = NULL;
        assert_null(ttrpc_request_decode(b, len, &err));
        assert_non_null(err);
        assert_int_equal(err->code, -EPROTO);
        assert_non_null(strstr(err->msg, "Request"));
        caa_error_free(err);
        err = NULL;
        assert_null(ttrpc_response_decode(b, len, &err));
        assert_int_equal(err->code, -EPROTO);
        caa_error_free(err);
        int64_t t;
        err = NULL;
        assert_int_equal(ttrpc_request_peek_timeout(b, len, &t, &err), -EPROTO);
        caa_error_free(err);
        free(b);
    }
    /* Field 0 nested in a metadata entry / in the Response status. */
    size_t len;
    uint8_t *b = tu_hex("2a03 800000", &len);
    assert_null(ttrpc_request_decode(b, len, NULL));
    free(b);
    b = tu_hex("0a03 800000", &len);
    assert_null(ttrpc_response_decode(b, len, NULL));
    free(b);

    /* An empty Request is valid: all fields default. */
    Ttrpc__Request *req = ttrpc_request_decode(NULL, 0, NULL);
    assert_non_null(req);
    assert_string_equal(req->service, "");
    ttrpc_request_free(req);
}

static void test_response_forms(void **state)
{
    (void)state;
    size_t len;
    uint8_t *b;

    /* Go success, empty message: 0 bytes. */
    b = ttrpc_response_encode(GRPC_OK, NULL, NULL, 0, &len);
    assert_int_equal(len, 0);
    free(b);
    /* Go success with payload: payload field only. */
    b = ttrpc_response_encode(GRPC_OK, NULL, (const uint8_t *)"\x08\x01", 2, &len);
    assert_int_equal(len, 4);
    assert_memory_equal(b, "\x12\x02\x08\x01", 4);
    free(b);
    /* Rust success: explicit empty status. */
    b = ttrpc_response_encode(GRPC_OK, "", (const uint8_t *)"\x08\x01", 2, &len);
    assert_int_equal(len, 6);
    assert_memory_equal(b, "\x0a\x00\x12\x02\x08\x01", 6);
    Ttrpc__Response *r = ttrpc_response_decode(b, len, NULL);
    assert_non_null(r);
    assert_non_null(r->status);
    assert_int_equal(r->status->code, 0);
    assert_int_equal(r->payload.len, 2);
    ttrpc_response_free(r);
    free(b);
    /* Error. */
    b = ttrpc_response_encode(GRPC_NOT_FOUND, "nope", NULL, 0, &len);
    size_t wl;
    uint8_t *want = tu_hex("0a08 0805 1204 6e6f7065", &wl);
    assert_int_equal(len, wl);
    assert_memory_equal(b, want, wl);
    free(want);
    free(b);
}

static void test_frame_build(void **state)
{
    (void)state;
    size_t len;
    uint8_t *f = ttrpc_frame_build(0x11, TTRPC_TYPE_RESPONSE, 0, NULL, 0, &len);
    assert_int_equal(len, 10);
    assert_memory_equal(f, "\x00\x00\x00\x00\x00\x00\x00\x11\x02\x00", 10);
    free(f);
    f = ttrpc_frame_build(1, TTRPC_TYPE_REQUEST, 0, (const uint8_t *)"xyz", 3, &len);
    assert_int_equal(len, 13);
    assert_memory_equal(f, "\x00\x00\x00\x03\x00\x00\x00\x01\x01\x00xyz", 13);
    free(f);

    Ttrpc__Response resp = TTRPC__RESPONSE__INIT;
    Google__Rpc__Status st = GOOGLE__RPC__STATUS__INIT;
    st.code = GRPC_UNIMPLEMENTED;
    st.message = "service ";
    resp.status = &st;
    f = ttrpc_frame_build_message(1, TTRPC_TYPE_RESPONSE, 0, &resp.base, &len);
    size_t wl;
    uint8_t *want = tu_hex("0000000e 00000001 02 00 0a0c 080c 1208 7365727669636520", &wl);
    assert_int_equal(len, wl);
    assert_memory_equal(f, want, wl);
    free(want);
    free(f);

    assert_string_equal(grpc_code_name(GRPC_RESOURCE_EXHAUSTED), "RESOURCE_EXHAUSTED");
    assert_string_equal(grpc_code_name(99), "UNKNOWN");
}

static void test_peek_timeout(void **state)
{
    (void)state;
    size_t len;
    int64_t t = -1;
    /* Absent. */
    uint8_t *b = ttrpc_request_encode("s", "m", NULL, 0, 0, NULL, 0, &len);
    assert_int_equal(ttrpc_request_peek_timeout(b, len, &t, NULL), 0);
    assert_int_equal(t, 0);
    free(b);
    /* Skips fixed32/fixed64 unknown fields; the last value wins. */
    b = tu_hex("0a0173 2064 3901020304050607 08 4d01020304 20c801", &len);
    assert_int_equal(ttrpc_request_peek_timeout(b, len, &t, NULL), 0);
    assert_int_equal(t, 200);
    free(b);
}

/* The view decoders decide exactly as the copying ones and give the same
 * fields; a large payload points into the input. */
static void expect_same_request(const uint8_t *buf, size_t len)
{
    Ttrpc__Request *full = ttrpc_request_decode(buf, len, NULL);
    const uint8_t *payload = NULL;
    size_t plen = 0;
    caa_error *err = NULL;
    Ttrpc__Request *view = ttrpc_request_decode_view(buf, len, &payload, &plen, &err);
    if (!full) {
        assert_null(view);
        assert_non_null(err);
        assert_int_equal(err->code, -EPROTO);
        caa_error_free(err);
        return;
    }
    assert_non_null(view);
    assert_string_equal(full->service, view->service);
    assert_string_equal(full->method, view->method);
    assert_int_equal(full->timeout_nano, view->timeout_nano);
    assert_int_equal(full->n_metadata, view->n_metadata);
    for (size_t i = 0; i < full->n_metadata; i++) {
        assert_string_equal(full->metadata[i]->key, view->metadata[i]->key);
        assert_string_equal(full->metadata[i]->value, view->metadata[i]->value);
    }
    assert_int_equal(full->base.n_unknown_fields, view->base.n_unknown_fields);
    assert_int_equal(plen, full->payload.len);
    if (plen)
        assert_memory_equal(payload, full->payload.data, plen);
    ttrpc_request_free(full);
    ttrpc_request_free(view);
}

static void test_request_decode_view(void **state)
{
    (void)state;
    uint8_t big[1000];
    for (size_t i = 0; i < sizeof(big); i++)
        big[i] = (uint8_t)(i * 13 + 1);
    ttrpc_kv md[] = {{"k1", "v1"}, {"k2", "v2"}};
    size_t len;
    uint8_t *body =
        ttrpc_request_encode("grpc.AgentService", "WriteStdin", big, sizeof(big), 5000000000, md, 2, &len);

    /* Large payload: in place, nothing copied. */
    const uint8_t *payload;
    size_t plen;
    Ttrpc__Request *r = ttrpc_request_decode_view(body, len, &payload, &plen, NULL);
    assert_non_null(r);
    assert_int_equal(plen, sizeof(big));
    assert_true(payload > body && payload + plen <= body + len);
    assert_memory_equal(payload, big, sizeof(big));
    assert_int_equal(r->payload.len, 0);
    ttrpc_request_free(r);
    expect_same_request(body, len);

    /* Small payload: decoded normally. */
    size_t slen;
    uint8_t *small = ttrpc_request_encode("s", "m", big, 10, 0, NULL, 0, &slen);
    r = ttrpc_request_decode_view(small, slen, &payload, &plen, NULL);
    assert_non_null(r);
    assert_int_equal(plen, 10);
    assert_memory_equal(payload, big, 10);
    ttrpc_request_free(r);
    free(small);

    /* Odd encodings: a second payload (the last wins), a payload field as a
     * varint, a field 0 after the payload, a non-minimal payload tag. */
    uint8_t *odd = xmalloc(len + 16);
    memcpy(odd, body, len);
    memcpy(odd + len, "\x1a\x01X", 3);
    expect_same_request(odd, len + 3);
    memcpy(odd + len, "\x18\x05", 2);
    expect_same_request(odd, len + 2);
    memcpy(odd + len, "\x80\x00\x01", 3);
    expect_same_request(odd, len + 3);
    uint8_t nonmin[1100];
    size_t n = 0;
    memcpy(nonmin, "\x0a\x01s\x12\x01m\x9a\x00\xe8\x07", 10); /* tag 3 as 9a 00, length 1000 */
    n = 10;
    memcpy(nonmin + n, big, sizeof(big));
    n += sizeof(big);
    expect_same_request(nonmin, n);
    free(odd);

    /* Every truncation and many single-byte changes decide alike. */
    for (size_t cut = 0; cut <= len; cut += (cut < 64 ? 1 : 97))
        expect_same_request(body, cut);
    uint8_t *mut = xmemdup(body, len);
    for (size_t i = 0; i < len; i += (i < 80 ? 1 : 61)) {
        for (unsigned v = 0; v < 256; v += 17) {
            uint8_t saved = mut[i];
            mut[i] = (uint8_t)v;
            expect_same_request(mut, len);
            mut[i] = saved;
        }
    }
    free(mut);
    free(body);
}

static void test_response_decode_view(void **state)
{
    (void)state;
    uint8_t big[600];
    memset(big, 0x5a, sizeof(big));
    size_t len;
    uint8_t *body = ttrpc_response_encode(0, "", big, sizeof(big), &len);
    const uint8_t *payload;
    size_t plen;
    Ttrpc__Response *r = ttrpc_response_decode_view(body, len, &payload, &plen, NULL);
    assert_non_null(r);
    assert_non_null(r->status); /* the Rust form keeps its status */
    assert_int_equal(r->status->code, 0);
    assert_int_equal(plen, sizeof(big));
    assert_true(payload > body && payload + plen <= body + len);
    assert_memory_equal(payload, big, sizeof(big));
    ttrpc_response_free(r);
    /* Same decisions as the copying decoder on damaged input. */
    for (size_t cut = 0; cut < len; cut += 7) {
        Ttrpc__Response *full = ttrpc_response_decode(body, cut, NULL);
        Ttrpc__Response *view = ttrpc_response_decode_view(body, cut, &payload, &plen, NULL);
        assert_int_equal(full != NULL, view != NULL);
        if (full)
            assert_int_equal(plen, full->payload.len);
        ttrpc_response_free(full);
        ttrpc_response_free(view);
    }
    free(body);
}

/* A body the reader assembled can be taken over instead of copied. */
static void test_reader_take_body(void **state)
{
    (void)state;
    ttrpc_frame_reader r;
    ttrpc_frame_reader_init(&r);
    uint8_t frame[10 + 300];
    ttrpc_frame_header h = {.length = 300, .stream_id = 1, .type = TTRPC_TYPE_REQUEST};
    ttrpc_header_encode(&h, frame);
    for (size_t i = 0; i < 300; i++)
        frame[10 + i] = (uint8_t)i;

    /* Whole frame in one chunk: the body points into the input. */
    const uint8_t *data = frame, *body;
    size_t len = sizeof(frame);
    ttrpc_frame_header got;
    assert_int_equal(ttrpc_frame_reader_next(&r, &data, &len, &got, &body), TTRPC_READ_FRAME);
    assert_ptr_equal(body, frame + 10);
    assert_null(ttrpc_frame_reader_take_body(&r, body));

    /* Split: assembled by the reader, then handed over. */
    data = frame;
    len = 100;
    assert_int_equal(ttrpc_frame_reader_next(&r, &data, &len, &got, &body), TTRPC_READ_MORE);
    data = frame + 100;
    len = sizeof(frame) - 100;
    assert_int_equal(ttrpc_frame_reader_next(&r, &data, &len, &got, &body), TTRPC_READ_FRAME);
    uint8_t *taken = ttrpc_frame_reader_take_body(&r, body);
    assert_ptr_equal(taken, body);
    assert_memory_equal(taken, frame + 10, 300);
    assert_true(ttrpc_frame_reader_idle(&r));
    /* The reader goes on without it. */
    data = frame;
    len = sizeof(frame);
    assert_int_equal(ttrpc_frame_reader_next(&r, &data, &len, &got, &body), TTRPC_READ_FRAME);
    free(taken);
    ttrpc_frame_reader_done(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_roundtrip),
        cmocka_unit_test(test_reader_one_byte_chunks),
        cmocka_unit_test(test_reader_one_chunk),
        cmocka_unit_test(test_reader_odd_splits),
        cmocka_unit_test(test_reader_oversize_skip),
        cmocka_unit_test(test_reader_max_length_accepted),
        cmocka_unit_test(test_reader_truncated_header),
        cmocka_unit_test(test_rust_vectors),
        cmocka_unit_test(test_request_decode_garbage),
        cmocka_unit_test(test_response_forms),
        cmocka_unit_test(test_frame_build),
        cmocka_unit_test(test_peek_timeout),
        cmocka_unit_test(test_request_decode_view),
        cmocka_unit_test(test_response_decode_view),
        cmocka_unit_test(test_reader_take_body),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
