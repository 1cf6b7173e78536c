/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * YAML text to a small node tree with positions, from libyaml's event API. This is the only
 * place that sees raw YAML, so it is where a hostile file is stopped: size, depth, node count
 * and scalar length are bounded while parsing (an explicit stack, no recursion), and the YAML
 * features a policy never needs are refused outright: anchors and aliases (which also rules out
 * "billion laughs"), explicit tags (`!!str`, `!foo`: refused rather than silently ignored, so a
 * file means the same to every reader), more than one document, non-scalar and duplicate keys.
 */
#include "ceredis.h"

#include <stdarg.h>
#include <yaml.h>

#include "policy-internal.h"

int policy_fail(PolicyError *error, PolicyPos pos, const char *format, ...) {
        va_list ap;

        if (error) {
                error->pos = pos;
                va_start(ap, format);
                vsnprintf(error->message, sizeof(error->message), format, ap);
                va_end(ap);
        }
        return -EINVAL;
}

/* Every node, child array and scalar of a tree is carved from big chunks: a policy of 16k services
 * has ~400k nodes, and one malloc (and free) per node and per scalar dominated parsing. */
#define ARENA_CHUNK (64u * 1024u) /* below malloc's mmap threshold: freed chunks are reused */

typedef struct ArenaChunk {
        struct ArenaChunk *next;
        size_t used, size;
        uint64_t data[]; /* 8-byte aligned: nodes and pointer arrays are carved from it */
} ArenaChunk;

struct PTree {
        PNode *root;
        ArenaChunk *chunks; /* the newest first; only it has room left */
};

static void *arena_alloc(PTree *t, size_t size) {
        ArenaChunk *c = t->chunks;
        void *p;

        if (size > SIZE_MAX - 8)
                return NULL;
        size = (size + 7) & ~(size_t) 7;
        if (!c || c->size - c->used < size) {
                /* A large request gets a chunk of its own behind the current one, so the room
                 * left in the current chunk is not wasted. */
                size_t n = size > ARENA_CHUNK ? size : ARENA_CHUNK;

                c = malloc(offsetof(ArenaChunk, data) + n);
                if (!c)
                        return NULL;
                c->used = 0;
                c->size = n;
                if (n > ARENA_CHUNK && t->chunks) {
                        c->next = t->chunks->next;
                        t->chunks->next = c;
                } else {
                        c->next = t->chunks;
                        t->chunks = c;
                }
        }
        p = (uint8_t *) c->data + c->used;
        c->used += size;
        return p;
}

const PNode *ptree_root(const PTree *t) {
        return t->root;
}

void ptree_free(PTree *t) {
        if (!t)
                return;
        while (t->chunks) {
                ArenaChunk *next = t->chunks->next;

                free(t->chunks);
                t->chunks = next;
        }
        free(t);
}

static PolicyPos mark_pos(const yaml_mark_t *m) {
        return (PolicyPos) { .line = (unsigned) m->line + 1, .column = (unsigned) m->column + 1 };
}

/* libyaml's reader errors carry a byte offset only: count lines and UTF-8 characters. */
static PolicyPos offset_pos(const uint8_t *data, size_t size, size_t offset) {
        PolicyPos pos = { 1, 1 };

        for (size_t i = 0; i < offset && i < size; i++) {
                if (data[i] == '\n') {
                        pos.line++;
                        pos.column = 1;
                } else if ((data[i] & 0xc0) != 0x80)
                        pos.column++;
        }
        return pos;
}

static int yaml_error(yaml_parser_t *parser, const uint8_t *data, size_t size, PolicyError *error) {
        PolicyPos pos;

        if (parser->error == YAML_MEMORY_ERROR) {
                policy_fail(error, (PolicyPos) { 0, 0 }, "out of memory while parsing YAML");
                return -ENOMEM;
        }
        if (parser->error == YAML_READER_ERROR) {
                pos = offset_pos(data, size, parser->problem_offset);
                if (parser->problem_value >= 0)
                        return policy_fail(error, pos, "invalid YAML: %s (byte 0x%02x)",
                                           parser->problem ?: "unreadable input", parser->problem_value & 0xff);
                return policy_fail(error, pos, "invalid YAML: %s", parser->problem ?: "unreadable input");
        }
        pos = mark_pos(&parser->problem_mark);
        if (parser->context)
                return policy_fail(error, pos, "invalid YAML: %s %s at %zu:%zu",
                                   parser->problem ?: "syntax error", parser->context,
                                   parser->context_mark.line + 1, parser->context_mark.column + 1);
        return policy_fail(error, pos, "invalid YAML: %s", parser->problem ?: "syntax error");
}

static int key_compare(const void *a, const void *b) {
        const PNode *x = *(PNode *const *) a, *y = *(PNode *const *) b;
        int r = strcmp(x->value, y->value);

        if (r != 0)
                return r;
        if (x->pos.line != y->pos.line)
                return x->pos.line < y->pos.line ? -1 : 1;
        return x->pos.column < y->pos.column ? -1 : x->pos.column > y->pos.column;
}

static bool pos_before(PolicyPos a, PolicyPos b) {
        return a.line < b.line || (a.line == b.line && a.column < b.column);
}

/* Duplicate keys, checked once the mapping is complete: sorting keeps this O(n log n) for a
 * services map of 100k entries. Reports the duplicate that comes first in the file. */
static int mapping_check_keys(const PNode *m, PolicyError *error) {
        _cleanup_free_ PNode **keys = NULL;
        size_t n = m->n_children / 2;
        const PNode *dup = NULL, *first = NULL;

        if (n < 2)
                return 0;
        if (n <= 16) {
                /* Keys are in file order: the first key equal to an earlier one is the duplicate
                 * that comes first, and the earliest equal key is the one it repeats. */
                for (size_t i = 1; i < n; i++)
                        for (size_t j = 0; j < i; j++)
                                if (streq(m->children[2 * i]->value, m->children[2 * j]->value)) {
                                        dup = m->children[2 * i];
                                        first = m->children[2 * j];
                                        goto found;
                                }
                return 0;
        }
        keys = malloc(n * sizeof(*keys));
        if (!keys)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++)
                keys[i] = m->children[2 * i];
        qsort(keys, n, sizeof(*keys), key_compare);

        for (size_t i = 0, run = 0; i < n; i++) {
                if (i > 0 && streq(keys[i]->value, keys[run]->value)) {
                        if (!dup || pos_before(keys[i]->pos, dup->pos)) {
                                dup = keys[i];
                                first = keys[run];
                        }
                } else
                        run = i;
        }
found:
        if (dup)
                return policy_fail(error, dup->pos, "duplicate key '%s' (first at %u:%u)", dup->value,
                                   first->pos.line, first->pos.column);
        return 0;
}

typedef struct TreeBuilder {
        PTree *tree;
        PNode *stack[POLICY_MAX_DEPTH];
        size_t stack_start[POLICY_MAX_DEPTH]; /* where each open collection's children begin */
        size_t depth;
        /* Children of the open collections, innermost last; a collection's slice is copied to
         * the arena at its end, with its exact size. */
        PNode **pending;
        size_t n_pending, allocated_pending;
        size_t n_nodes;
        unsigned n_documents;
        PolicyError *error;
} TreeBuilder;

/* Attach a new node to the open collection on top of the stack. */
static int attach(TreeBuilder *b, PNode *child) {
        size_t n_children = b->n_pending - b->stack_start[b->depth - 1];
        int r;

        if (b->stack[b->depth - 1]->kind == PNODE_MAPPING && n_children % 2 == 0 &&
            child->kind != PNODE_SCALAR)
                return policy_fail(b->error, child->pos, "expected a plain key, got a %s",
                                   child->kind == PNODE_MAPPING ? "mapping" : "sequence");
        if (n_children + 1 > POLICY_MAX_NODES)
                return policy_fail(b->error, child->pos, "too many entries (limit %u)", POLICY_MAX_NODES);
        r = ARRAY_GROW(b->pending, b->allocated_pending, b->n_pending + 1, SIZE_MAX / sizeof(PNode *));
        if (r < 0)
                return -ENOMEM;
        b->pending[b->n_pending++] = child;
        return 0;
}

/* The collection on top of the stack is complete: give it its children. */
static int close_collection(TreeBuilder *b) {
        PNode *n = b->stack[b->depth - 1];
        size_t start = b->stack_start[b->depth - 1];

        n->n_children = b->n_pending - start;
        if (n->n_children > 0) {
                n->children = arena_alloc(b->tree, n->n_children * sizeof(PNode *));
                if (!n->children)
                        return -ENOMEM;
                memcpy(n->children, b->pending + start, n->n_children * sizeof(PNode *));
        }
        b->n_pending = start;
        b->depth--;
        if (n->kind == PNODE_MAPPING)
                return mapping_check_keys(n, b->error);
        return 0;
}

static int tree_add(TreeBuilder *b, const yaml_event_t *ev) {
        PNode *n;
        PolicyPos pos = mark_pos(&ev->start_mark);
        const char *anchor = NULL, *tag = NULL;
        int r;

        switch (ev->type) {
        case YAML_SCALAR_EVENT:
                anchor = (const char *) ev->data.scalar.anchor;
                tag = (const char *) ev->data.scalar.tag;
                break;
        case YAML_SEQUENCE_START_EVENT:
                anchor = (const char *) ev->data.sequence_start.anchor;
                tag = (const char *) ev->data.sequence_start.tag;
                break;
        case YAML_MAPPING_START_EVENT:
                anchor = (const char *) ev->data.mapping_start.anchor;
                tag = (const char *) ev->data.mapping_start.tag;
                break;
        default:
                return -EINVAL;
        }
        if (anchor)
                return policy_fail(b->error, pos, "anchors and aliases are not supported (found anchor '&%.64s')", anchor);
        if (tag)
                return policy_fail(b->error, pos, "YAML tags are not supported (found '%.64s'): write the plain value", tag);
        if (b->n_nodes >= POLICY_MAX_NODES)
                return policy_fail(b->error, pos, "too many YAML nodes (limit %u)", POLICY_MAX_NODES);
        if (ev->type != YAML_SCALAR_EVENT && b->depth >= POLICY_MAX_DEPTH)
                return policy_fail(b->error, pos, "nesting too deep (limit %u levels)", POLICY_MAX_DEPTH);
        if (ev->type == YAML_SCALAR_EVENT) {
                if (ev->data.scalar.length > POLICY_MAX_SCALAR)
                        return policy_fail(b->error, pos, "scalar too long (%zu bytes, limit %u)",
                                           ev->data.scalar.length, POLICY_MAX_SCALAR);
                if (memchr(ev->data.scalar.value, 0, ev->data.scalar.length))
                        return policy_fail(b->error, pos, "NUL character in a scalar");
        }

        n = arena_alloc(b->tree, sizeof(*n));
        if (!n)
                return -ENOMEM;
        *n = (PNode) { .pos = pos };
        if (ev->type == YAML_SCALAR_EVENT) {
                n->kind = PNODE_SCALAR;
                n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                n->length = ev->data.scalar.length;
                n->value = arena_alloc(b->tree, n->length + 1);
                if (!n->value)
                        return -ENOMEM;
                memcpy(n->value, ev->data.scalar.value, n->length);
                n->value[n->length] = '\0';
        } else
                n->kind = ev->type == YAML_MAPPING_START_EVENT ? PNODE_MAPPING : PNODE_SEQUENCE;
        b->n_nodes++;

        if (b->depth == 0) {
                if (b->tree->root)
                        return policy_fail(b->error, pos, "expected one YAML document with one root node");
                b->tree->root = n;
        } else {
                r = attach(b, n);
                if (r < 0)
                        return r;
        }
        if (n->kind != PNODE_SCALAR) {
                b->stack_start[b->depth] = b->n_pending;
                b->stack[b->depth++] = n;
        }
        return 0;
}

int policy_yaml_parse(const void *data, size_t size, PTree **ret, PolicyError *error) {
        TreeBuilder b = { .error = error };
        _cleanup_(ptree_freep) PTree *tree = NULL;
        yaml_parser_t parser;
        yaml_event_t ev;
        bool done = false;
        int r = 0;

        if (size > POLICY_MAX_FILE_SIZE)
                return policy_fail(error, (PolicyPos) { 0, 0 }, "file too large (%zu bytes, limit %u)",
                                   size, POLICY_MAX_FILE_SIZE);
        tree = calloc(1, sizeof(*tree));
        if (!tree)
                return -ENOMEM;
        b.tree = tree;
        if (!yaml_parser_initialize(&parser))
                return -ENOMEM;
        yaml_parser_set_input_string(&parser, data, size);

        while (!done && r >= 0) {
                if (!yaml_parser_parse(&parser, &ev)) {
                        r = yaml_error(&parser, data, size, error);
                        break;
                }
                PolicyPos pos = mark_pos(&ev.start_mark);

                switch (ev.type) {
                case YAML_STREAM_START_EVENT:
                case YAML_DOCUMENT_END_EVENT:
                        break;
                case YAML_DOCUMENT_START_EVENT:
                        if (++b.n_documents > 1)
                                r = policy_fail(error, pos, "expected a single YAML document, found a second one");
                        break;
                case YAML_STREAM_END_EVENT:
                        if (!tree->root)
                                r = policy_fail(error, pos, "empty policy: expected a mapping with version, hosts, zones and services");
                        done = true;
                        break;
                case YAML_ALIAS_EVENT:
                        r = policy_fail(error, pos, "anchors and aliases are not supported (found alias '*%.64s')",
                                        (const char *) ev.data.alias.anchor);
                        break;
                case YAML_SCALAR_EVENT:
                case YAML_SEQUENCE_START_EVENT:
                case YAML_MAPPING_START_EVENT:
                        r = tree_add(&b, &ev);
                        break;
                case YAML_SEQUENCE_END_EVENT:
                case YAML_MAPPING_END_EVENT:
                        if (b.depth == 0) {
                                r = -EINVAL;
                                break;
                        }
                        r = close_collection(&b);
                        break;
                default:
                        break;
                }
                yaml_event_delete(&ev);
        }
        yaml_parser_delete(&parser);
        free(b.pending);
        if (r < 0)
                return r;
        *ret = TAKE_PTR(tree);
        return 0;
}
