/* Fuzz target ttrpc-frame: the frame reader over the input, fed whole and in
 * small chunks (same frames both ways), and every frame body decoded as a
 * Request and as a Response; a decoded Request must re-encode to something
 * that decodes, and the relay's timeout peek must agree with the decoder;
 * the in-place (_view) decoders must decide and decode as the copying ones. */
#include <assert.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "ttrpc-codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check_body(const uint8_t *body, size_t len)
{
    Ttrpc__Request *req = ttrpc_request_decode(body, len, NULL);
    int64_t peek = 0;
    int pr = ttrpc_request_peek_timeout(body, len, &peek, NULL);
    if (req) {
        assert(pr == 0);
        assert(peek == req->timeout_nano);
        size_t n;
        uint8_t *again = ttrpc_pack(&req->base, &n);
        Ttrpc__Request *req2 = ttrpc_request_decode(again, n, NULL);
        assert(req2);
        assert(strcmp(req2->service, req->service) == 0);
        assert(strcmp(req2->method, req->method) == 0);
        assert(req2->payload.len == req->payload.len);
        assert(req2->n_metadata == req->n_metadata);
        ttrpc_request_free(req2);
        free(again);
        ttrpc_request_free(req);
    }
    const uint8_t *vp;
    size_t vlen;
    Ttrpc__Request *view = ttrpc_request_decode_view(body, len, &vp, &vlen, NULL);
    Ttrpc__Request *full = ttrpc_request_decode(body, len, NULL);
    assert((view != NULL) == (full != NULL));
    if (full) {
        assert(strcmp(view->service, full->service) == 0);
        assert(strcmp(view->method, full->method) == 0);
        assert(view->timeout_nano == full->timeout_nano);
        assert(view->n_metadata == full->n_metadata);
        assert(vlen == full->payload.len && (vlen == 0 || memcmp(vp, full->payload.data, vlen) == 0));
    }
    ttrpc_request_free(view);
    ttrpc_request_free(full);

    Ttrpc__Response *resp = ttrpc_response_decode(body, len, NULL);
    Ttrpc__Response *rview = ttrpc_response_decode_view(body, len, &vp, &vlen, NULL);
    assert((rview != NULL) == (resp != NULL));
    if (resp) {
        assert((rview->status != NULL) == (resp->status != NULL));
        assert(vlen == resp->payload.len && (vlen == 0 || memcmp(vp, resp->payload.data, vlen) == 0));
    }
    ttrpc_response_free(rview);
    ttrpc_response_free(resp);
}

typedef struct seen {
    uint32_t n;
    uint64_t sum; /* order-sensitive digest of headers and bodies */
} seen;

static void digest(seen *s, int kind, const ttrpc_frame_header *h, const uint8_t *body)
{
    s->n++;
    s->sum = s->sum * 1099511628211u + (uint64_t)kind * 131 + h->length + ((uint64_t)h->stream_id << 8) +
             ((uint64_t)h->type << 40) + ((uint64_t)h->flags << 48);
    if (kind == TTRPC_READ_FRAME)
        for (uint32_t i = 0; i < h->length; i++)
            s->sum = s->sum * 31 + body[i];
}

static void run(const uint8_t *data, size_t size, size_t chunk, seen *s, bool decode)
{
    ttrpc_frame_reader r;
    ttrpc_frame_reader_init(&r);
    while (size > 0) {
        size_t n = size < chunk ? size : chunk;
        const uint8_t *p = data;
        size_t len = n;
        for (;;) {
            ttrpc_frame_header h;
            const uint8_t *body;
            int res = ttrpc_frame_reader_next(&r, &p, &len, &h, &body);
            if (res == TTRPC_READ_MORE)
                break;
            assert(res == TTRPC_READ_FRAME || res == TTRPC_READ_OVERSIZE);
            if (res == TTRPC_READ_FRAME)
                assert(h.length <= TTRPC_MESSAGE_LENGTH_MAX);
            else
                assert(h.length > TTRPC_MESSAGE_LENGTH_MAX);
            digest(s, res, &h, body);
            if (res == TTRPC_READ_FRAME && decode)
                check_body(body, h.length);
        }
        assert(len == 0);
        data += n;
        size -= n;
    }
    ttrpc_frame_reader_done(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    seen whole = {0}, pieces = {0};
    run(data, size, size ? size : 1, &whole, true);
    /* The first byte picks a chunk size, so splits land everywhere. */
    size_t chunk = size ? (size_t)(data[0] % 23) + 1 : 1;
    run(data, size, chunk, &pieces, false);
    assert(whole.n == pieces.n);
    assert(whole.sum == pieces.sum);

    /* The body alone, as an envelope. */
    check_body(data, size);
    return 0;
}
