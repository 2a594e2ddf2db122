/*
 * hmap: an open-addressing hash map from byte strings to pointers.  Keys are
 * not copied: each key must stay unchanged in memory while it is in the
 * map (the usual key is a field of the object the value points to).
 * Not thread-safe; each map belongs to one thread.
 */
#ifndef NVMFD_HMAP_H
#define NVMFD_HMAP_H

#include <stddef.h>
#include <stdint.h>

struct hmap_slot {
	const void	*key;		/* NULL: empty */
	size_t		klen;
	uint64_t	hash;
	void		*val;
};

struct hmap {
	struct hmap_slot *slots;
	size_t		cap;		/* a power of two, or 0 */
	size_t		n;
};

void	 hmap_init(struct hmap *);
void	 hmap_free(struct hmap *);
/* Adds key -> val, replacing an equal key's value; -1 if out of memory. */
int	 hmap_put(struct hmap *, const void *key, size_t klen, void *val);
void	*hmap_get(const struct hmap *, const void *key, size_t klen);
/* Removes key if it maps to val (or if val is NULL); returns its value. */
void	*hmap_del(struct hmap *, const void *key, size_t klen, void *val);
uint64_t hmap_hash(const void *key, size_t klen);

#endif
