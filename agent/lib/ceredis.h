/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Common header of the CEREDIS agent: every source file includes it first. It carries the few
 * helpers the whole code base shares (cleanup attributes, ownership transfer, array sizes,
 * errno conventions) so that no module grows its own variant.
 *
 * Conventions: functions that can fail return a negative errno; outputs are `ret_*` and left
 * untouched on failure; destructors accept NULL; library code never logs or prints.
 */
#pragma once

#include "config.h"

#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

#define _cleanup_(f) __attribute__((cleanup(f)))
#define _unused_ __attribute__((unused))
#define _printf_(a, b) __attribute__((format(printf, a, b)))
#define _warn_unused_ __attribute__((warn_unused_result))

/* Take ownership of a pointer: returns it and clears the variable, so cleanup does nothing. */
#define TAKE_PTR(p)                                                                            \
        ({                                                                                     \
                __typeof__(p) _p_ = (p);                                                       \
                (p) = NULL;                                                                    \
                _p_;                                                                           \
        })

#define TAKE_FD(fd)                                                                            \
        ({                                                                                     \
                int _fd_ = (fd);                                                               \
                (fd) = -1;                                                                     \
                _fd_;                                                                          \
        })

static inline void freep(void *p) {
        free(*(void **) p);
}

static inline void closep(int *fd) {
        if (*fd >= 0) {
                int saved = errno;
                close(*fd);
                errno = saved;
        }
}

static inline void fclosep(FILE **f) {
        if (*f)
                fclose(*f);
}

#define _cleanup_free_ _cleanup_(freep)
#define _cleanup_close_ _cleanup_(closep)
#define _cleanup_fclose_ _cleanup_(fclosep)

/* Declare a cleanup function `name##p` for a type whose destructor is `name`. */
#define DEFINE_TRIVIAL_CLEANUP_FUNC(type, func)                                                \
        static inline void func##p(type *p) {                                                  \
                if (*p)                                                                        \
                        func(*p);                                                              \
        }

/* A -1 from libc becomes -errno at the call site; never lose the cause. */
static inline int negative_errno(void) {
        return errno > 0 ? -errno : -EIO;
}

static inline bool streq(const char *a, const char *b) {
        return strcmp(a, b) == 0;
}

static inline bool streq_ptr(const char *a, const char *b) {
        if (!a || !b)
                return a == b;
        return strcmp(a, b) == 0;
}

/* Grow an array to hold at least `need` items of `size` bytes, doubling; caps at `max` items.
 * Returns 0, -ENOMEM, or -E2BIG past the cap. */
int array_grow(void **array, size_t *allocated, size_t need, size_t size, size_t max);

#define ARRAY_GROW(array, allocated, need, max)                                                \
        array_grow((void **) &(array), &(allocated), (need), sizeof(*(array)), (max))
