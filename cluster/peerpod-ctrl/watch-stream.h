/* The Kubernetes watch stream (GET ...?watch=1&resourceVersion=R&
 * allowWatchBookmarks=true): one JSON event per line,
 * {"type": ADDED|MODIFIED|DELETED|BOOKMARK|ERROR, "object": {...}}.
 *
 * The decoder cuts the byte stream into lines (bounded), the parser checks
 * one event. Every non-error event carries the resourceVersion to resume
 * from after a reconnect (BOOKMARK events carry nothing else). An ERROR
 * event with a Status of code 410 (the resourceVersion is too old,
 * "Expired"/"Gone") means: list again and watch from the list's version. */
#pragma once

#include <stdbool.h>
#include <stddef.h>

#include <jansson.h>

#include "error.h"

/* Largest event line accepted (an object plus envelope). */
#define CAA_WATCH_MAX_LINE (4u * 1024 * 1024)

typedef struct caa_watch_decoder {
    char *buf;
    size_t len, cap;
    size_t handed_out; /* bytes of the line returned last (with its newline), dropped on the next call */
} caa_watch_decoder;

/* Appends bytes; returns 0, or -EMSGSIZE when a line grows past the limit
 * (the stream must then be dropped). */
int caa_watch_decoder_feed(caa_watch_decoder *d, const char *data, size_t len, caa_error **err);
/* Next complete line (without the newline, not NUL-terminated), valid until
 * the next feed/next call; false when none is complete yet. Empty lines are
 * skipped. */
bool caa_watch_decoder_next(caa_watch_decoder *d, const char **line, size_t *len);
void caa_watch_decoder_done(caa_watch_decoder *d);

typedef enum caa_watch_type {
    CAA_WATCH_ADDED,
    CAA_WATCH_MODIFIED,
    CAA_WATCH_DELETED,
    CAA_WATCH_BOOKMARK,
    CAA_WATCH_GONE, /* ERROR with code 410: re-list */
} caa_watch_type;

typedef struct caa_watch_event {
    caa_watch_type type;
    json_t *object;         /* the object (reference owned by the event) */
    char *resource_version; /* resume point */
} caa_watch_event;

/* -EINVAL for a line that is not an event; -EPROTO for an ERROR event other
 * than 410 (err carries the Status message). *ev written only on success. */
int caa_watch_event_parse(const char *line, size_t len, caa_watch_event *ev, caa_error **err);
void caa_watch_event_done(caa_watch_event *ev);
