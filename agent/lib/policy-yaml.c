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

void pnode_free(PNode *n) {
        /* Iterative, so that freeing never recurses deeper than the parse did. */
        PNode *stack[POLICY_MAX_DEPTH + 2];
        size_t depth = 0;

        if (!n)
                return;
        stack[depth++] = n;
        while (depth > 0) {
                PNode *top = stack[depth - 1];

                if (top->n_children > 0) {
                        PNode *child = top->children[--top->n_children];
                        if (child)
                                stack[depth++] = child;
                        continue;
                }
                depth--;
                free(top->children);
                free(top->value);
                free(top);
        }
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
        if (dup)
                return policy_fail(error, dup->pos, "duplicate key '%s' (first at %u:%u)", dup->value,
                                   first->pos.line, first->pos.column);
        return 0;
}

/* Attach a new node to the open collection on top of the stack. */
static int attach(PNode *parent, PNode *child, PolicyError *error) {
        int r;

        if (parent->kind == PNODE_MAPPING && parent->n_children % 2 == 0 && child->kind != PNODE_SCALAR)
                return policy_fail(error, child->pos, "expected a plain key, got a %s",
                                   child->kind == PNODE_MAPPING ? "mapping" : "sequence");
        r = ARRAY_GROW(parent->children, parent->allocated, parent->n_children + 1, POLICY_MAX_NODES);
        if (r == -E2BIG)
                return policy_fail(error, child->pos, "too many entries (limit %u)", POLICY_MAX_NODES);
        if (r < 0)
                return r;
        parent->children[parent->n_children++] = child;
        return 0;
}

typedef struct TreeBuilder {
        PNode *root;
        PNode *stack[POLICY_MAX_DEPTH];
        size_t depth;
        size_t n_nodes;
        unsigned n_documents;
        PolicyError *error;
} TreeBuilder;

static void tree_builder_done(TreeBuilder *b) {
        /* Nodes on the stack are attached to the root (or are the root): freeing it is enough. */
        pnode_free(b->root);
        b->root = NULL;
}

static int tree_add(TreeBuilder *b, const yaml_event_t *ev) {
        _cleanup_(pnode_freep) PNode *n = NULL;
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

        n = calloc(1, sizeof(*n));
        if (!n)
                return -ENOMEM;
        n->pos = pos;
        if (ev->type == YAML_SCALAR_EVENT) {
                if (ev->data.scalar.length > POLICY_MAX_SCALAR)
                        return policy_fail(b->error, pos, "scalar too long (%zu bytes, limit %u)",
                                           ev->data.scalar.length, POLICY_MAX_SCALAR);
                if (memchr(ev->data.scalar.value, 0, ev->data.scalar.length))
                        return policy_fail(b->error, pos, "NUL character in a scalar");
                n->kind = PNODE_SCALAR;
                n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
                n->length = ev->data.scalar.length;
                n->value = strndup((const char *) ev->data.scalar.value, n->length);
                if (!n->value)
                        return -ENOMEM;
        } else
                n->kind = ev->type == YAML_MAPPING_START_EVENT ? PNODE_MAPPING : PNODE_SEQUENCE;
        b->n_nodes++;

        if (b->depth == 0) {
                if (b->root)
                        return policy_fail(b->error, pos, "expected one YAML document with one root node");
                b->root = n;
        } else {
                r = attach(b->stack[b->depth - 1], n, b->error);
                if (r < 0)
                        return r;
        }
        if (n->kind != PNODE_SCALAR)
                b->stack[b->depth++] = n;
        TAKE_PTR(n);
        return 0;
}

int policy_yaml_parse(const void *data, size_t size, PNode **ret, PolicyError *error) {
        TreeBuilder b = { .error = error };
        yaml_parser_t parser;
        yaml_event_t ev;
        bool done = false;
        int r = 0;

        if (size > POLICY_MAX_FILE_SIZE)
                return policy_fail(error, (PolicyPos) { 0, 0 }, "file too large (%zu bytes, limit %u)",
                                   size, POLICY_MAX_FILE_SIZE);
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
                        if (!b.root)
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
                        if (b.stack[b.depth - 1]->kind == PNODE_MAPPING)
                                r = mapping_check_keys(b.stack[b.depth - 1], error);
                        b.depth--;
                        break;
                default:
                        break;
                }
                yaml_event_delete(&ev);
        }
        yaml_parser_delete(&parser);
        if (r < 0) {
                tree_builder_done(&b);
                return r;
        }
        *ret = TAKE_PTR(b.root);
        return 0;
}
