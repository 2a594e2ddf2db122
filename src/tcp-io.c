/*
 * Byte plumbing shared by both NVMe/TCP roles: iovec slicing, the receive
 * buffer that reads as much as the stream has while letting a large
 * payload land in place in its destination, and the blocking read of the
 * set-up exchanges (also nvmfctl's).
 */
#include "config.h"

#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include "nvmfd.h"

/* Blocking read of exactly len bytes, waiting at most timeout_ms for each
 * part; -1 on timeout, error or end of stream (set-up and nvmfctl only). */
int
fd_read_full(int fd, void *buf, size_t len, int timeout_ms)
{
	size_t got = 0;

	while (got < len) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;

		if (poll(&pfd, 1, timeout_ms) <= 0)
			return (-1);
		if ((n = read(fd, (uint8_t *)buf + got, len - got)) <= 0)
			return (-1);
		got += n;
	}
	return (0);
}

/* Map [off, off + len) of src to at most max iovecs in dst (may be src). */
int
iov_slice(const struct iovec *src, int srccnt, size_t off, size_t len,
    struct iovec *dst, int max)
{
	int n = 0;

	for (int i = 0; i < srccnt && len > 0 && n < max; i++) {
		size_t l = src[i].iov_len;

		if (off >= l) {
			off -= l;
			continue;
		}
		dst[n].iov_base = (uint8_t *)src[i].iov_base + off;
		dst[n].iov_len = MINIMUM(l - off, len);
		len -= dst[n++].iov_len;
		off = 0;
	}
	return (n);
}

/* Drop the first skip bytes of cnt iovecs in place; returns the new count. */
int
iov_skip(struct iovec *iov, int cnt, size_t skip)
{
	int i = 0;

	while (i < cnt && skip >= iov[i].iov_len)
		skip -= iov[i++].iov_len;
	if (i > 0)
		memmove(iov, iov + i, (cnt - i) * sizeof(*iov));
	cnt -= i;
	if (cnt > 0 && skip > 0) {
		iov[0].iov_base = (uint8_t *)iov[0].iov_base + skip;
		iov[0].iov_len -= skip;
	}
	return (cnt);
}

/*
 * Read what the socket has: first whatever payload is being read in place,
 * then as much as fits in the buffer, in one readv.  Returns the bytes
 * read, 0 at end of stream, or -1 with errno; *drained tells whether the
 * socket had less than there was room for.
 */
ssize_t
rxbuf_read(struct rxbuf *rx, int fd, struct tls_conn *tls, bool *drained)
{
	struct iovec iov[NVMFD_CMD_MAX_IOV + 1];
	size_t want, d;
	ssize_t n, got;
	int cnt = 0;

	/* Unparsed bytes to the front.  None while a payload is read in
	 * place: rxbuf_take() leaves a remainder only once it took them all. */
	if (rx->off > 0) {
		memmove(rx->buf, rx->buf + rx->off, rx->len - rx->off);
		rx->len -= rx->off;
		rx->off = 0;
	}
	if (rx->direct_left > 0) {
		cnt = rx->ndirect;
		memcpy(iov, rx->direct, cnt * sizeof(*iov));
	}
	iov[cnt].iov_base = rx->buf + rx->len;
	iov[cnt++].iov_len = rx->cap - rx->len;
	want = rx->direct_left + (rx->cap - rx->len);
	n = got = stream_readv(fd, tls, iov, cnt);
	if (n <= 0)
		return (n);
	if (rx->direct_left > 0) {
		d = MINIMUM((size_t)n, rx->direct_left);
		rx->direct_left -= d;
		rx->ndirect = iov_slice(rx->direct, rx->ndirect, d,
		    rx->direct_left, rx->direct, NVMFD_CMD_MAX_IOV);
		n -= d;
	}
	rx->len += n;
	*drained = (size_t)got < want;
	return (got);
}

/*
 * A payload of len bytes goes to dst: copy what is buffered already and
 * leave the rest to be read in place by rxbuf_read().
 */
void
rxbuf_take(struct rxbuf *rx, const struct iovec *dst, int ndst, size_t len)
{
	struct iovec part[NVMFD_CMD_MAX_IOV];
	size_t have = MINIMUM(rx->len - rx->off, len);
	const uint8_t *src = rx->buf + rx->off;
	int n;

	n = iov_slice(dst, ndst, 0, have, part, NVMFD_CMD_MAX_IOV);
	for (int i = 0; i < n; i++) {
		memcpy(part[i].iov_base, src, part[i].iov_len);
		src += part[i].iov_len;
	}
	rx->off += have;
	rx->direct_left = len - have;
	rx->ndirect = rx->direct_left ? iov_slice(dst, ndst, have,
	    rx->direct_left, rx->direct, NVMFD_CMD_MAX_IOV) : 0;
}
