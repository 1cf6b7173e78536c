/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Small helpers shared by every module: bounded array growth. */
#include "ceredis.h"

int array_grow(void **array, size_t *allocated, size_t need, size_t size, size_t max) {
        size_t n;
        void *p;

        if (need <= *allocated)
                return 0;
        if (need > max)
                return -E2BIG;
        n = *allocated ? *allocated : 8;
        while (n < need)
                n = n > SIZE_MAX / 2 ? need : n * 2;
        if (n > max)
                n = max;
        if (n > SIZE_MAX / size)
                return -ENOMEM;
        p = realloc(*array, n * size);
        if (!p)
                return -ENOMEM;
        memset((char *) p + *allocated * size, 0, (n - *allocated) * size);
        *array = p;
        *allocated = n;
        return 0;
}
