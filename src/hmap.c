/*
 * Open addressing with linear probing, at most 3/4 full, and backward-shift
 * deletion (no tombstones), so lookups stay short however many keys come
 * and go.  Used where nvmfd looks things up by name among thousands: the
 * subsystems by NQN, the namespace identifiers while a file loads.
 */
#include "config.h"

#include <stdlib.h>
#include <string.h>

#include "hmap.h"

#define HMAP_MIN_CAP	16

/* FNV-1a, 64 bits, with a final mix: keys are short (NQNs, 16-byte IDs). */
uint64_t
hmap_hash(const void *key, size_t klen)
{
	const uint8_t *p = key;
	uint64_t h = 0xcbf29ce484222325ull;

	for (size_t i = 0; i < klen; i++) {
		h ^= p[i];
		h *= 0x100000001b3ull;
	}
	h ^= h >> 33;
	h *= 0xff51afd7ed558ccdull;
	h ^= h >> 33;
	return (h);
}

void
hmap_init(struct hmap *m)
{
	m->slots = NULL;
	m->cap = 0;
	m->n = 0;
}

void
hmap_free(struct hmap *m)
{
	free(m->slots);
	hmap_init(m);
}

static struct hmap_slot *
find_slot(const struct hmap *m, const void *key, size_t klen, uint64_t h)
{
	size_t mask = m->cap - 1;

	for (size_t i = h & mask;; i = (i + 1) & mask) {
		struct hmap_slot *s = &m->slots[i];

		if (s->key == NULL || (s->hash == h && s->klen == klen &&
		    memcmp(s->key, key, klen) == 0))
			return (s);
	}
}

static int
grow(struct hmap *m)
{
	struct hmap old = *m;
	size_t cap = old.cap ? old.cap * 2 : HMAP_MIN_CAP;

	if ((m->slots = calloc(cap, sizeof(*m->slots))) == NULL) {
		m->slots = old.slots;
		return (-1);
	}
	m->cap = cap;
	for (size_t i = 0; i < old.cap; i++)
		if (old.slots[i].key != NULL)
			*find_slot(m, old.slots[i].key, old.slots[i].klen,
			    old.slots[i].hash) = old.slots[i];
	free(old.slots);
	return (0);
}

int
hmap_put(struct hmap *m, const void *key, size_t klen, void *val)
{
	uint64_t h = hmap_hash(key, klen);
	struct hmap_slot *s;

	if ((m->n + 1) * 4 > m->cap * 3 && grow(m) == -1)
		return (-1);
	s = find_slot(m, key, klen, h);
	if (s->key == NULL)
		m->n++;
	s->key = key;
	s->klen = klen;
	s->hash = h;
	s->val = val;
	return (0);
}

void *
hmap_get(const struct hmap *m, const void *key, size_t klen)
{
	struct hmap_slot *s;

	if (m->cap == 0)
		return (NULL);
	s = find_slot(m, key, klen, hmap_hash(key, klen));
	return (s->key != NULL ? s->val : NULL);
}

void *
hmap_del(struct hmap *m, const void *key, size_t klen, void *val)
{
	size_t mask = m->cap - 1, i, j;
	struct hmap_slot *s;
	void *old;

	if (m->cap == 0)
		return (NULL);
	s = find_slot(m, key, klen, hmap_hash(key, klen));
	if (s->key == NULL || (val != NULL && s->val != val))
		return (NULL);
	old = s->val;
	m->n--;
	/* Pull back every later entry of the run that may move into the hole. */
	i = (size_t)(s - m->slots);
	for (j = (i + 1) & mask; m->slots[j].key != NULL; j = (j + 1) & mask) {
		size_t home = m->slots[j].hash & mask;

		/* Leave it if its home lies cyclically in (i, j]. */
		if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
			continue;
		m->slots[i] = m->slots[j];
		i = j;
	}
	m->slots[i].key = NULL;
	return (old);
}
