/*
 * Per-loop data buffers in power-of-two size classes, 4 KiB to max_len.
 * A buffer is allocated once and then cycles through its class's free list,
 * so the data path does not call malloc.  Owned by one loop: no locks.
 */
#include "config.h"

#include <sys/mman.h>

#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"

#define BUF_MIN_SHIFT	12	/* 4 KiB: page aligned, O_DIRECT friendly */
#define BUF_MMAP_SHIFT	18	/* from 256 KiB, straight from the kernel */
#define BUF_MAX_CLASSES	(31 - BUF_MIN_SHIFT)

/* A free buffer stores the link to the next one in its first bytes. */
struct freebuf {
	struct freebuf	*next;
};

struct bufclass {
	struct freebuf	*free;
	size_t		nfree;
	size_t		nalloc;		/* live buffers of this class */
};

struct bufpool {
	size_t		max_len;
	int		nclasses;
	struct bufclass	classes[BUF_MAX_CLASSES];
};

/* Smallest class whose buffers hold len bytes. */
static int
class_of(size_t len)
{
	int c = 0;

	while (((size_t)1 << (BUF_MIN_SHIFT + c)) < len)
		c++;
	return (c);
}

static size_t
class_size(int c)
{
	return ((size_t)1 << (BUF_MIN_SHIFT + c));
}

struct bufpool *
bufpool_create(size_t max_len)
{
	struct bufpool *bp;

	if (max_len > ((size_t)1 << (BUF_MIN_SHIFT + BUF_MAX_CLASSES - 1)))
		return (NULL);
	if ((bp = calloc(1, sizeof(*bp))) == NULL)
		return (NULL);
	bp->max_len = max_len;
	bp->nclasses = class_of(max_len) + 1;
	return (bp);
}

static void
buf_release(int c, void *p)
{
	if (BUF_MIN_SHIFT + c >= BUF_MMAP_SHIFT)
		munmap(p, class_size(c));
	else
		free(p);
}

void
bufpool_destroy(struct bufpool *bp)
{
	if (bp == NULL)
		return;
	for (int c = 0; c < bp->nclasses; c++) {
		struct bufclass *bc = &bp->classes[c];
		struct freebuf *fb;

		if (bc->nalloc != bc->nfree)
			log_warnx("bufpool: %zu buffers of %zu bytes still in use",
			    bc->nalloc - bc->nfree, class_size(c));
		while ((fb = bc->free) != NULL) {
			bc->free = fb->next;
			buf_release(c, fb);
		}
	}
	free(bp);
}

void *
bufpool_get(struct bufpool *bp, size_t len)
{
	struct bufclass *bc;
	struct freebuf *fb;
	void *p;
	int c;

	if (len > bp->max_len)
		return (NULL);
	c = class_of(len);
	bc = &bp->classes[c];
	if ((fb = bc->free) != NULL) {
		bc->free = fb->next;
		bc->nfree--;
		return (fb);
	}

	/* First use of this many buffers of the class: grow. */
	if (BUF_MIN_SHIFT + c >= BUF_MMAP_SHIFT) {
		p = mmap(NULL, class_size(c), PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		if (p == MAP_FAILED)
			return (NULL);
	} else if (posix_memalign(&p, class_size(0), class_size(c)) != 0)
		return (NULL);
	bc->nalloc++;
	return (p);
}

void
bufpool_put(struct bufpool *bp, void *p, size_t len)
{
	struct bufclass *bc;
	struct freebuf *fb = p;

	if (p == NULL)
		return;
	if (len > bp->max_len) {
		/* Cannot be ours: the class would not match the allocation. */
		log_warnx("bufpool: put of %zu bytes above max %zu", len,
		    bp->max_len);
		return;
	}
	bc = &bp->classes[class_of(len)];
	fb->next = bc->free;
	bc->free = fb;
	bc->nfree++;
}
