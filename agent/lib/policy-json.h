/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The policy model as JSON (`ceredisctl policy show --json`): every default filled in, every
 * selector shown as written and as resolved, positions as "LINE:COL". Keys come in a fixed
 * order, so that two runs on the same file print the same bytes.
 */
#pragma once

#include <jansson.h>

#include "policy.h"

/* A new reference to the normalised model, or NULL on ENOMEM. Dump with JSON_PRESERVE_ORDER. */
json_t *policy_to_json(const Policy *p);
