/* Growing arrays: the one helper for "append to a malloc'ed array", after
 * nbdkit's vector.h, for replog, fs/ and tools/ alike.
 *
 *	struct thing *v = NULL;
 *	size_t n = 0, cap = 0;
 *
 *	if (rl_grow(&v, &cap, n + 1, sizeof(*v)) < 0)
 *		return -ENOMEM;
 *	v[n++] = thing;
 *
 * The capacity doubles (from 16), so n appends cost O(n) copies.  On
 * failure the array is left as it was, still the caller's to free. */
#ifndef REPLOG_VEC_H
#define REPLOG_VEC_H

#include <errno.h>
#include <stdint.h>
#include <stdlib.h>

/* Makes *ptr (an array of elem-byte items, *cap of them allocated) hold at
 * least want items.  0, or -ENOMEM with *ptr and *cap untouched. */
static inline int rl_grow(void *ptr, size_t *cap, size_t want, size_t elem)
{
	void **p = ptr;
	size_t c = *cap ? *cap : 16;
	void *v;

	if (want <= *cap)
		return 0;
	while (c < want)
		c *= 2;
	if (c > SIZE_MAX / elem)
		return -ENOMEM;
	v = realloc(*p, c * elem);
	if (!v)
		return -ENOMEM;
	*p = v;
	*cap = c;
	return 0;
}

#endif
