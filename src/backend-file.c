/*
 * File and block device namespaces.  The data path is asynchronous: every
 * I/O goes to the calling loop's I/O engine (io-engine.c).
 */
#include "config.h"

#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/types.h>

#include <linux/fs.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "nvmfd.h"

static bool
type_ok(const struct namespace *ns, const struct stat *st, char *err,
    size_t errlen)
{
	if (ns->type == BACKEND_FILE && !S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "%s: not a regular file%s", ns->path,
		    S_ISBLK(st->st_mode) ? " (use a block namespace)" : "");
		return (false);
	}
	if (ns->type == BACKEND_BLOCK && !S_ISBLK(st->st_mode)) {
		snprintf(err, errlen, "%s: not a block device%s", ns->path,
		    S_ISREG(st->st_mode) ? " (use a file namespace)" : "");
		return (false);
	}
	return (true);
}

/* Capacity and logical block size of an open block device. */
static int
block_geometry(struct namespace *ns, uint64_t *size, uint32_t *lbs, char *err,
    size_t errlen)
{
	int ssz;

	if (ioctl(ns->fd, BLKGETSIZE64, size) == -1) {
		snprintf(err, errlen, "%s: BLKGETSIZE64: %s", ns->path,
		    strerror(errno));
		return (-1);
	}
	if (ioctl(ns->fd, BLKSSZGET, &ssz) == -1) {
		snprintf(err, errlen, "%s: BLKSSZGET: %s", ns->path,
		    strerror(errno));
		return (-1);
	}
	*lbs = (uint32_t)ssz;
	return (0);
}

/* A number from the device's queue limits in sysfs; 0 if unknown. */
static uint32_t
queue_limit(dev_t dev, const char *name)
{
	/* A partition's limits are its disk's, one directory up. */
	static const char *const dirs[] = { "queue", "../queue" };
	char path[128], buf[32];
	unsigned long v = 0;
	FILE *fp;

	for (size_t i = 0; i < nitems(dirs) && v == 0; i++) {
		snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/%s/%s",
		    major(dev), minor(dev), dirs[i], name);
		if ((fp = fopen(path, "re")) == NULL)
			continue;
		if (fgets(buf, sizeof(buf), fp) != NULL)
			v = strtoul(buf, NULL, 10);
		fclose(fp);
	}
	return (v <= UINT32_MAX ? (uint32_t)v : 0);
}

/*
 * The sizes writes and deallocations should come in to avoid extra work
 * below (a read-modify-write of a page or a physical sector): the device's
 * queue limits, or for a file its file system's block size.  Identify
 * reports them (NPWG, NOWS, NPDG), and hosts align to them.
 */
static void
io_hints(struct namespace *ns, const struct stat *st)
{
	if (ns->type == BACKEND_BLOCK) {
		ns->pref_write = queue_limit(st->st_rdev, "minimum_io_size");
		ns->opt_write = queue_limit(st->st_rdev, "optimal_io_size");
		ns->pref_discard = queue_limit(st->st_rdev,
		    "discard_granularity");
	} else {
		ns->pref_write = ns->pref_discard = (uint32_t)st->st_blksize;
		ns->opt_write = 0;
	}
}

/* With O_DIRECT a regular file has its own alignment rule: blocks smaller
 * than it would fail every I/O with EINVAL, so refuse them now. */
static int
file_dio_check(struct namespace *ns, uint32_t bs, char *err, size_t errlen)
{
#ifdef STATX_DIOALIGN
	struct statx stx;

	if (statx(ns->fd, "", AT_EMPTY_PATH, STATX_DIOALIGN, &stx) == 0 &&
	    (stx.stx_mask & STATX_DIOALIGN) != 0 &&
	    stx.stx_dio_offset_align != 0 && bs < stx.stx_dio_offset_align) {
		snprintf(err, errlen, "%s: block size %u is smaller than the "
		    "%u-byte alignment direct I/O needs on this file system",
		    ns->path, bs, stx.stx_dio_offset_align);
		return (-1);
	}
#else
	(void)ns;
	(void)bs;
	(void)err;
	(void)errlen;
#endif
	return (0);
}

static void
file_close(struct namespace *ns)
{
	if (ns->fd != -1)
		close(ns->fd);
	ns->fd = -1;
}

static int
file_open(struct namespace *ns, char *err, size_t errlen)
{
	int flags = (ns->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC;
	uint32_t bs = ns->block_size;
	uint64_t size;
	struct stat st;

	ns->fd = -1;
	if (ns->path == NULL || ns->path[0] == '\0') {
		snprintf(err, errlen, "%s namespace needs a path",
		    ns->type == BACKEND_BLOCK ? "block" : "file");
		return (-1);
	}
	if (ns->direct)
		flags |= O_DIRECT;

	/* Check the type before opening: opening a device can have effects. */
	if (stat(ns->path, &st) == 0) {
		if (!type_ok(ns, &st, err, errlen))
			return (-1);
	} else if (errno != ENOENT || ns->type != BACKEND_FILE ||
	    ns->size == 0 || ns->readonly) {
		snprintf(err, errlen, "%s: %s", ns->path, strerror(errno));
		return (-1);
	} else
		flags |= O_CREAT;

	if ((ns->fd = open(ns->path, flags, 0600)) == -1) {
		if (errno == EINVAL && ns->direct)
			snprintf(err, errlen, "%s: direct I/O not supported "
			    "here", ns->path);
		else
			snprintf(err, errlen, "%s: %s", ns->path,
			    strerror(errno));
		return (-1);
	}
	/* Again on what was opened, in case the path changed meanwhile. */
	if (fstat(ns->fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", ns->path, strerror(errno));
		goto fail;
	}
	if (!type_ok(ns, &st, err, errlen))
		goto fail;

	if (ns->type == BACKEND_BLOCK) {
		uint32_t lbs;

		if (block_geometry(ns, &size, &lbs, err, errlen) == -1)
			goto fail;
		if (bs == 0)
			bs = lbs;
		else if (bs < lbs) {
			snprintf(err, errlen, "%s: block size %u is smaller "
			    "than the device's logical block size %u",
			    ns->path, bs, lbs);
			goto fail;
		}
	} else {
		size = (uint64_t)st.st_size;
		if (!ns->readonly && ns->size > size) {
			if (ftruncate(ns->fd, (off_t)ns->size) == -1) {
				snprintf(err, errlen, "%s: cannot extend to "
				    "%llu bytes: %s", ns->path,
				    (unsigned long long)ns->size,
				    strerror(errno));
				goto fail;
			}
			size = ns->size;
		}
		if (bs == 0)
			bs = 512;
		if (ns->direct && file_dio_check(ns, bs, err, errlen) == -1)
			goto fail;
	}

	ns->size = size;
	ns->lba_shift = (uint32_t)__builtin_ctz(bs);
	ns->vwc = true;		/* the page cache or the disk cache */
	io_hints(ns, &st);
	return (0);
fail:
	file_close(ns);
	return (-1);
}

static void
file_submit(struct nvmf_io *io)
{
	int rc;

	if ((rc = backend_io_check(io)) != 0) {
		io->done(io, rc);
		return;
	}
	io_engine_submit(cur_loop->engine, io, io->ns->fd);
}

/*
 * A namespace opened read-only becomes writable: open the same file for
 * writing and put it in place of the old descriptor with dup3, so I/O in
 * flight on other loops never sees a closed descriptor.
 */
static int
file_set_writable(struct namespace *ns, char *err, size_t errlen)
{
	int flags = O_RDWR | O_CLOEXEC | (ns->direct ? O_DIRECT : 0);
	struct stat a, b;
	int fd;

	if ((fd = open(ns->path, flags)) == -1) {
		snprintf(err, errlen, "%s: %s", ns->path, strerror(errno));
		return (-1);
	}
	if (fstat(fd, &a) == -1 || fstat(ns->fd, &b) == -1 ||
	    a.st_ino != b.st_ino || a.st_dev != b.st_dev ||
	    a.st_rdev != b.st_rdev) {
		snprintf(err, errlen, "%s: no longer the file that was opened",
		    ns->path);
		close(fd);
		return (-1);
	}
	if (dup3(fd, ns->fd, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "%s: %s", ns->path, strerror(errno));
		close(fd);
		return (-1);
	}
	close(fd);
	return (0);
}

/* set-ns --size: the file's new length, longer or shorter (ns-resize.c
 * sends neither block devices nor read-only files here). */
static int
file_resize(struct namespace *ns, uint64_t bytes, char *err, size_t errlen)
{
	if (bytes > (uint64_t)INT64_MAX ||
	    ftruncate(ns->fd, (off_t)bytes) == -1) {
		snprintf(err, errlen, "%s: cannot make it %llu bytes: %s",
		    ns->path, (unsigned long long)bytes,
		    bytes > (uint64_t)INT64_MAX ? "too large" :
		    strerror(errno));
		return (-1);
	}
	__atomic_store_n(&ns->size, bytes, __ATOMIC_RELEASE);
	return (0);
}

/* rescan-ns, reload: how big the file or the device is now. */
static int
file_probe_size(struct namespace *ns, uint64_t *bytes, char *err,
    size_t errlen)
{
	struct stat st;
	uint32_t lbs;

	if (ns->type == BACKEND_BLOCK)
		return (block_geometry(ns, bytes, &lbs, err, errlen));
	if (fstat(ns->fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", ns->path, strerror(errno));
		return (-1);
	}
	*bytes = (uint64_t)st.st_size;
	return (0);
}

/*
 * set-ns --path: the namespace's storage is now path (the old device died,
 * the data moved).  The new descriptor takes the old one's number with
 * dup3, so a loop never sees a closed descriptor: commands in flight end
 * on the old storage, later ones go to the new.  Nothing changes unless
 * path opens as the same kind of storage, with blocks no larger.
 */
static int
file_replace(struct namespace *ns, const char *path, char *err, size_t errlen)
{
	int flags = (ns->readonly ? O_RDONLY : O_RDWR) | O_CLOEXEC |
	    (ns->direct ? O_DIRECT : 0);
	uint32_t bs = 1u << ns->lba_shift, lbs;
	struct namespace n = {
		.type = ns->type, .path = (char *)path, .direct = ns->direct,
		.fd = -1,
	};
	uint64_t size;
	struct stat st;
	char *copy = NULL;

	if (stat(path, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return (-1);
	}
	if (!type_ok(&n, &st, err, errlen))
		return (-1);
	if ((n.fd = open(path, flags)) == -1 || fstat(n.fd, &st) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	if (!type_ok(&n, &st, err, errlen))
		goto fail;
	if (ns->type == BACKEND_BLOCK) {
		if (block_geometry(&n, &size, &lbs, err, errlen) == -1)
			goto fail;
		if (lbs > bs) {
			snprintf(err, errlen, "%s: its logical block size %u is "
			    "larger than the namespace's %u", path, lbs, bs);
			goto fail;
		}
	} else if (ns->direct && file_dio_check(&n, bs, err, errlen) == -1)
		goto fail;
	if ((copy = strdup(path)) == NULL) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (dup3(n.fd, ns->fd, O_CLOEXEC) == -1) {
		snprintf(err, errlen, "%s: %s", path, strerror(errno));
		goto fail;
	}
	close(n.fd);
	free(ns->path);
	ns->path = copy;
	io_hints(ns, &st);
	return (0);
fail:
	free(copy);
	if (n.fd != -1)
		close(n.fd);
	return (-1);
}

const struct backend_ops backend_file_ops = {
	.name = "file",
	.open = file_open,
	.close = file_close,
	.submit = file_submit,
	.set_writable = file_set_writable,
	.resize = file_resize,
	.probe_size = file_probe_size,
	.replace = file_replace,
};
