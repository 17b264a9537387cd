/* Fuzz target securecomms-tags: the tag list parser in both directions; what
 * it accepts must format and parse back to the same list. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "sc-tags.h"
#include "xalloc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const caa_sc_tags *a, const caa_sc_tags *b)
{
    if (a->n != b->n)
        abort();
    for (size_t i = 0; i < a->n; i++) {
        const caa_sc_tag *x = &a->items[i], *y = &b->items[i];
        if (x->phase != y->phase || x->port != y->port || strcmp(x->name, y->name) != 0)
            abort();
        if ((x->host == NULL) != (y->host == NULL) || (x->host && strcmp(x->host, y->host) != 0))
            abort();
        if ((x->netns == NULL) != (y->netns == NULL) || (x->netns && strcmp(x->netns, y->netns) != 0))
            abort();
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *text = xstrndup((const char *)data, size);
    caa_sc_direction dirs[] = {CAA_SC_INBOUND, CAA_SC_OUTBOUND};
    for (size_t d = 0; d < 2; d++) {
        caa_sc_tags tags;
        caa_sc_tags_init(&tags, dirs[d]);
        caa_error *err = NULL;
        if (caa_sc_tags_parse_append(&tags, text, &err) < 0) {
            if (!err || tags.n != 0)
                abort();
            caa_error_free(err);
            continue;
        }
        char *again = caa_sc_tags_format(&tags);
        caa_sc_tags back;
        caa_sc_tags_init(&back, dirs[d]);
        if (caa_sc_tags_parse_append(&back, again, NULL) < 0)
            abort();
        same(&tags, &back);
        caa_sc_tags_done(&back);
        caa_sc_tags_done(&tags);
        free(again);
    }
    free(text);
    return 0;
}
