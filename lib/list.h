/* Intrusive circular doubly-linked list (the node is embedded in its owner).
 *
 * A node is "unlinked" when zeroed or after caa_list_init/caa_list_remove;
 * appending a node that is still on a list is an ownership bug and asserts. */
#pragma once

#include <assert.h>
#include <stdbool.h>
#include <stddef.h>

typedef struct caa_list {
    struct caa_list *prev, *next;
} caa_list;

static inline void caa_list_init(caa_list *head)
{
    head->prev = head->next = head;
}

static inline bool caa_list_empty(const caa_list *head)
{
    return head->next == head;
}

static inline bool caa_list_linked(const caa_list *node)
{
    return node->next && node->next != node;
}

static inline void caa_list_append(caa_list *head, caa_list *node)
{
    assert(!caa_list_linked(node) && "node is already on a list");
    node->prev = head->prev;
    node->next = head;
    head->prev->next = node;
    head->prev = node;
}

/* Safe on a node that is not linked (after caa_list_init or a previous remove). */
static inline void caa_list_remove(caa_list *node)
{
    node->prev->next = node->next;
    node->next->prev = node->prev;
    node->prev = node->next = node;
}

/* Moves every node of src onto dst (a head not in use, initialised here) and
 * leaves src empty: a caller runs the batch while callbacks append to src. */
static inline void caa_list_move_all(caa_list *dst, caa_list *src)
{
    caa_list_init(dst);
    if (caa_list_empty(src))
        return;
    dst->next = src->next;
    dst->prev = src->prev;
    dst->next->prev = dst;
    dst->prev->next = dst;
    caa_list_init(src);
}

#define caa_list_entry(ptr, type, member) ((type *)((char *)(ptr)-offsetof(type, member)))

/* Iterates allowing removal of the current node. */
#define caa_list_foreach_safe(pos, tmp, head)                                                                \
    for (pos = (head)->next, tmp = pos->next; pos != (head); pos = tmp, tmp = pos->next)
