/*
 * layer.h — the tables of a layer over the designs (the debug layer, the thread
 * cache): one hl_allocator per wrapped design, named NAME+suffix, whose create
 * knows its inner design. A table's create() gets only the hooks, so each slot
 * has its own create; HL_LAYER_SLOTS defines them.
 *
 *   HL_LAYER_SLOTS(cache_slots, cache_create)   // cache_create(inner, hooks)
 *   ... hl_layer_table(&cache_slots, &cache_ops, "+cache", inner)
 */
#ifndef HEAPLAB_LAYER_H
#define HEAPLAB_LAYER_H

#include <string.h>
#include "allocator.h"
#include "pages/spinlock.h"

enum { HL_LAYER_SLOTS_MAX = 8 }; /* designs one layer can wrap */

typedef struct hl_layer_slot {
    hl_allocator table;
    const hl_allocator *inner;
    char name[32];
} hl_layer_slot;

typedef struct hl_layer_slots {
    hl_layer_slot slot[HL_LAYER_SLOTS_MAX];
    void *(*create[HL_LAYER_SLOTS_MAX])(const hl_hooks *hooks);
    hl_spinlock lock;
} hl_layer_slots;

#define HL_LAYER_CREATE_(slots, fn, i) \
    static void *slots##_create_##i(const hl_hooks *hooks) { return fn(slots.slot[i].inner, hooks); }
/* Defines `static hl_layer_slots slots` whose creates call fn(inner, hooks). */
#define HL_LAYER_SLOTS(slots, fn)                                                                    \
    static hl_layer_slots slots;                                                                     \
    HL_LAYER_CREATE_(slots, fn, 0) HL_LAYER_CREATE_(slots, fn, 1) HL_LAYER_CREATE_(slots, fn, 2)     \
    HL_LAYER_CREATE_(slots, fn, 3) HL_LAYER_CREATE_(slots, fn, 4) HL_LAYER_CREATE_(slots, fn, 5)     \
    HL_LAYER_CREATE_(slots, fn, 6) HL_LAYER_CREATE_(slots, fn, 7)                                    \
    static hl_layer_slots slots = {.create = {slots##_create_0, slots##_create_1, slots##_create_2,  \
                                              slots##_create_3, slots##_create_4, slots##_create_5,  \
                                              slots##_create_6, slots##_create_7},                   \
                                   .lock = HL_SPINLOCK_INIT}

/* The table of `inner` behind this layer: `ops` (every entry but name and
 * create) under the name inner->name + suffix; NULL if inner is NULL or every
 * slot holds another design. */
static inline const hl_allocator *hl_layer_table(hl_layer_slots *s, const hl_allocator *ops, const char *suffix,
                                                 const hl_allocator *inner) {
    const hl_allocator *out = NULL;
    if (!inner) return NULL;
    hl_spin_lock(&s->lock);
    for (size_t i = 0; i < HL_LAYER_SLOTS_MAX && !out; i++) {
        hl_layer_slot *slot = &s->slot[i];
        if (!slot->inner) {
            size_t n = strlen(inner->name), k = strlen(suffix);
            if (n > sizeof slot->name - k - 1) n = sizeof slot->name - k - 1;
            memcpy(slot->name, inner->name, n);
            memcpy(slot->name + n, suffix, k + 1);
            slot->table = *ops;
            slot->table.name = slot->name;
            slot->table.create = s->create[i];
            __atomic_store_n(&slot->inner, inner, __ATOMIC_RELEASE);
        }
        if (slot->inner == inner) out = &slot->table;
    }
    hl_spin_unlock(&s->lock);
    return out;
}

/* The design behind one of this layer's tables, or NULL. */
static inline const hl_allocator *hl_layer_inner(const hl_layer_slots *s, const hl_allocator *table) {
    for (size_t i = 0; i < HL_LAYER_SLOTS_MAX; i++)
        if (table == &s->slot[i].table) return s->slot[i].inner;
    return NULL;
}

#endif
