/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Internals shared by the policy loader's stages, never included outside agent/lib/policy*.c:
 * the bounded YAML node tree (policy-yaml.c builds it from libyaml events), the error helper,
 * and the stage entry points (policy-load.c turns the tree into a model, policy-validate.c
 * resolves selectors and checks the model against itself).
 */
#pragma once

#include "ceredis.h"
#include "policy.h"

typedef enum PNodeKind {
        PNODE_SCALAR,
        PNODE_SEQUENCE,
        PNODE_MAPPING,
} PNodeKind;

/* One YAML node. A mapping's children alternate key (always a scalar) and value. Nodes,
 * scalar bytes and child arrays all live in the tree's arena: they are never freed one by one. */
typedef struct PNode {
        PNodeKind kind;
        PolicyPos pos;
        bool plain;  /* scalar written without quotes (only plain scalars are numbers/bools/null) */
        char *value; /* scalar only, NUL-terminated */
        size_t length;
        struct PNode **children;
        size_t n_children;
} PNode;

/* A parsed document: the root node and the arena that holds every node. */
typedef struct PTree PTree;

/* Build the node tree of a single-document YAML text, enforcing every POLICY_MAX_* limit that
 * applies to raw YAML, refusing anchors, aliases, tags, duplicate and non-scalar keys. */
int policy_yaml_parse(const void *data, size_t size, PTree **ret, PolicyError *error);
const PNode *ptree_root(const PTree *t);
void ptree_free(PTree *t);
DEFINE_TRIVIAL_CLEANUP_FUNC(PTree *, ptree_free);

/* Fill `error` and return -EINVAL: the one way every stage reports a refusal. */
int policy_fail(PolicyError *error, PolicyPos pos, const char *format, ...) _printf_(3, 4);

/* Tree to model: types, names, values and per-section limits. */
int policy_build(const char *path, const PNode *root, Policy *p, PolicyError *error);

/* Cross-references: selector resolution, flow ports, flows against forbids. */
int policy_validate(Policy *p, PolicyError *error);

/* "dmz, private" or "a, b, c, ... (300 in all)": the names a message can suggest, from an array
 * of `n` structs of `stride` bytes with a `char *` name at `name_offset`. */
void policy_names_list(char *buf, size_t size, const void *items, size_t n, size_t stride, size_t name_offset);

/* "{ tag: ai }", "api", "internet": an endpoint as written, for messages. */
int policy_endpoint_format(const PolicyEndpoint *e, char *buf, size_t size);
