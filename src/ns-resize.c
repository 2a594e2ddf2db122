/*
 * A namespace's size changes while hosts use it: nvmfctl set-ns --size,
 * nvmfctl rescan-ns, and reload (main loop).
 *
 * Growing: the backend makes its storage bigger first (RAM memory, a
 * file's length), then the new capacity is published; a command that sees
 * it finds the storage there.
 *
 * Shrinking: the smaller capacity is published first, so every command
 * checked after it that reaches past the new end fails with LBA Out of
 * Range.  Commands that started before may still be moving data in the
 * range being cut, so ns_drain() waits for them, and only then does the
 * backend give the storage up (a RAM namespace's pages, a file's tail).
 * The namespace is held meanwhile so that a removal frees it only after.
 * One shrink at a time per namespace: another size change made while one
 * waits is refused as busy.
 *
 * Ordering: the capacity is stored before ns_drain() moves the epoch on,
 * and a command reads it after ns_hold() read the epoch, so a command that
 * counted itself in the new epoch sees the new capacity.
 *
 * Every controller of the subsystem gets the Namespace Attribute Changed
 * event (where enabled) and the NSID in its Changed Namespace List.
 */
#include "config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include "nvmfd.h"

struct shrink {
	struct namespace *ns;
	uint64_t	bytes;
	bool		storage;	/* the backend resizes its storage */
};

static void
set_nlb(struct namespace *ns, uint64_t nlb)
{
	__atomic_store_n(&ns->nlb, nlb, __ATOMIC_SEQ_CST);
}

static void
set_bytes(struct namespace *ns, uint64_t bytes)
{
	__atomic_store_n(&ns->size, bytes, __ATOMIC_RELEASE);
}

static void
shrink_done(void *arg)
{
	struct shrink *s = arg;
	struct namespace *ns = s->ns;
	char err[256];

	/* Removed meanwhile: its storage goes with it, whatever its size. */
	if (ns->published && s->storage) {
		if (ns->ops->resize(ns, s->bytes, err, sizeof(err)) != 0)
			log_warnx("%s namespace %u: %s", ns->subsys->nqn,
			    ns->nsid, err);
	} else if (ns->published)
		set_bytes(ns, s->bytes);
	log_debug("namespace %u: shrink settled", ns->nsid);
	atomic_store(&ns->resize_busy, false);
	atomic_fetch_sub(&ns->held_back, 1);
	free(s);
}

/* A shrink still waiting: the namespace's storage must not change. */
static bool
busy(struct namespace *ns, char *err, size_t errlen)
{
	if (!atomic_load(&ns->resize_busy))
		return (false);
	snprintf(err, errlen, "namespace %u: an earlier shrink still waits "
	    "for commands in flight; try again", ns->nsid);
	return (true);
}

static void
announce(struct namespace *ns, uint64_t old_nlb)
{
	uint64_t bs = 1ull << ns->lba_shift;

	log_info("%s namespace %u: size %llu -> %llu bytes", ns->subsys->nqn,
	    ns->nsid, (unsigned long long)(old_nlb * bs),
	    (unsigned long long)(ns->nlb * bs));
	ctrl_notify_ns_changed(ns->subsys, ns->nsid);
}

/* storage: make the backend's storage bytes long (set-ns --size), or only
 * take the size it has now (rescan).  -1 with err, -2 busy. */
static int
resize_to(struct namespace *ns, uint64_t bytes, bool storage, char *err,
    size_t errlen)
{
	uint64_t nlb = bytes >> ns->lba_shift, old = ns->nlb;
	struct shrink *s;

	if (busy(ns, err, errlen))
		return (-2);
	if (nlb == 0) {
		snprintf(err, errlen, "namespace %u: %llu bytes is less than "
		    "one %u-byte block", ns->nsid, (unsigned long long)bytes,
		    1u << ns->lba_shift);
		return (-1);
	}
	/* Refused now: a shrink is shown to hosts before the storage
	 * follows, which must not fail then. */
	if (storage && ns->type == BACKEND_RBD) {
		snprintf(err, errlen, "namespace %u: an rbd namespace has the "
		    "size of its image; rbd resize it, and nvmfd follows",
		    ns->nsid);
		return (-1);
	}
	if (storage && (ns->ops->resize == NULL ||
	    ns->type == BACKEND_BLOCK)) {
		snprintf(err, errlen, "namespace %u: a %s namespace has the "
		    "size of its device; resize that, then rescan-ns",
		    ns->nsid, backend_type_name(ns->type));
		return (-1);
	}
	if (storage && ns->type == BACKEND_FILE && ns->readonly) {
		snprintf(err, errlen, "namespace %u: read-only: its file is "
		    "not changed", ns->nsid);
		return (-1);
	}
	if (bytes >= ns->size) {
		if (storage && ns->ops->resize(ns, bytes, err, errlen) != 0)
			return (-1);
		if (!storage)
			set_bytes(ns, bytes);
		set_nlb(ns, nlb);
		if (nlb != old)
			announce(ns, old);
		return (0);
	}
	if ((s = calloc(1, sizeof(*s))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (-1);
	}
	s->ns = ns;
	s->bytes = bytes;
	s->storage = storage;
	atomic_store(&ns->resize_busy, true);
	atomic_fetch_add(&ns->held_back, 1);	/* not freed under us */
	set_nlb(ns, nlb);
	if (nlb != old)
		announce(ns, old);
	ns_drain(ns, NULL, 0, shrink_done, s);
	return (0);
}

int
ns_resize(struct namespace *ns, uint64_t bytes, char *err, size_t errlen)
{
	return (resize_to(ns, bytes, true, err, errlen));
}

int
ns_replace(struct namespace *ns, const char *path, char *err, size_t errlen)
{
	bool changed;
	int rc;

	if (ns->ops->replace == NULL) {
		snprintf(err, errlen, "namespace %u: a %s namespace has no "
		    "path", ns->nsid, backend_type_name(ns->type));
		return (-1);
	}
	/* A shrink that settles later would cut the new storage. */
	if (busy(ns, err, errlen))
		return (-2);
	if (ns->ops->replace(ns, path, err, errlen) != 0)
		return (-1);
	log_info("%s namespace %u: now on %s", ns->subsys->nqn, ns->nsid,
	    ns->path);
	if ((rc = ns_rescan(ns, &changed, err, errlen)) != 0)
		return (rc);
	/* Other data, maybe the same size: hosts look again either way. */
	if (!changed)
		ctrl_notify_ns_changed(ns->subsys, ns->nsid);
	return (0);
}

int
ns_rescan(struct namespace *ns, bool *changed, char *err, size_t errlen)
{
	uint64_t bytes, old = ns->nlb;
	int rc;

	*changed = false;
	if (ns->ops->probe_size == NULL)
		return (0);		/* RAM: its size is ours */
	if (ns->ops->probe_size(ns, &bytes, err, errlen) != 0)
		return (-1);
	if (bytes == ns->size && (bytes >> ns->lba_shift) == old)
		return (0);
	rc = resize_to(ns, bytes, false, err, errlen);
	*changed = rc == 0 && ns->nlb != old;
	return (rc);
}
