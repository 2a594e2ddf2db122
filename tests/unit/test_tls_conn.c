/*
 * TLS record I/O (tls-conn.c) over a socketpair: nvmfd's server end
 * against an OpenSSL client whose records the test cuts up itself.
 * Records split at every byte, several records at once, hostile records,
 * large writes (records of at most 16 KiB, a full socket), records opened
 * into scattered buffers, KeyUpdate both ways and close_notify.  A busy
 * loop shows as calls counted, never as time.
 */
#include "config.h"

#include <check.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>

#include "nvmfd.h"
#include "tls.h"

#define HOST	"nqn.2026-12.io.nvmfd.test:tls-conn-host"
#define SUB	"nqn.2026-12.io.nvmfd.test:tls-conn"
#define KEY32	"NVMeTLSkey-1:01:VRLbtnN9AQb2WXW3c9+wEf/DRLz0QuLdbYvEhwtdWwNf9LrZ:"
#define REC	16384		/* plaintext per record */
#define REC_WIRE (5 + REC + 256)

static SSL_CTX *cctx;
static SSL *cli;		/* the client: memory BIOs, records by hand */
static BIO *cin, *cout;		/* ciphertext into / out of the client */
static struct host_psk hp;
static SSL_SESSION *csess;
static struct tls_conn *srv;
static int sfd, cfd;		/* server's and client's socket */

static int
use_psk(SSL *ssl, const EVP_MD *md, const unsigned char **id, size_t *idlen,
    SSL_SESSION **sess)
{
	(void)ssl;
	(void)md;
	if (!SSL_SESSION_up_ref(csess))
		return (0);
	*sess = csess;
	*id = (const unsigned char *)hp.identity;
	*idlen = strlen(hp.identity);
	return (1);
}

static void
pattern(uint8_t *p, size_t len, unsigned seed)
{
	for (size_t i = 0; i < len; i++)
		p[i] = (uint8_t)(seed * 131 + i * 7 + (i >> 9));
}

/* All the client has made, out of its memory BIO; the length. */
static size_t
client_records(uint8_t *buf, size_t cap)
{
	int n = BIO_read(cout, buf, (int)cap);

	ck_assert_int_eq(BIO_pending(cout), 0);
	return (n > 0 ? (size_t)n : 0);
}

static void
write_all(int fd, const uint8_t *p, size_t len)
{
	while (len > 0) {
		ssize_t n = write(fd, p, len);

		ck_assert_int_gt(n, 0);
		p += n;
		len -= n;
	}
}

/* What the socket holds, into the client's input. */
static void
client_take(void)
{
	uint8_t buf[16384];
	ssize_t n;

	for (int i = 0; i < 4096; i++) {
		if ((n = read(cfd, buf, sizeof(buf))) <= 0)
			return;
		ck_assert_int_eq(BIO_write(cin, buf, (int)n), n);
	}
	ck_abort_msg("client socket never drained");
}

static void
setup(void)
{
	struct config *cf;
	char err[512], why[200];
	int sv[2], cdone = 0, sdone = 0;

	/* Loaded only, never started: nothing listens. */
	cf = config_load_string("test",
	    "ports:\n"
	    "  - {address: 127.0.0.1, port: 24830, tls: required}\n"
	    "subsystems:\n"
	    "  - nqn: " SUB "\n"
	    "    hosts:\n"
	    "      - nqn: " HOST "\n"
	    "        tls_key: '" KEY32 "'\n"
	    "    namespaces:\n"
	    "      - {nsid: 1, backend: ram, size: 1M}\n", err, sizeof(err));
	ck_assert_msg(cf != NULL, "%s", err);
	running_config = cf;
	ck_assert_int_eq(host_psk_make(&hp, KEY32, NULL, HOST, SUB, err,
	    sizeof(err)), 0);

	ck_assert_int_eq(socketpair(AF_UNIX, SOCK_STREAM, 0, sv), 0);
	sfd = sv[0];
	cfd = sv[1];
	ck_assert_int_eq(fcntl(sfd, F_SETFL, O_NONBLOCK), 0);
	ck_assert_int_eq(fcntl(cfd, F_SETFL, O_NONBLOCK), 0);
	ck_assert_ptr_nonnull(srv = tls_conn_accept(sfd, "test-peer"));

	ck_assert_ptr_nonnull(cctx = SSL_CTX_new(TLS_client_method()));
	SSL_CTX_set_min_proto_version(cctx, TLS1_3_VERSION);
	SSL_CTX_set_ciphersuites(cctx, "TLS_AES_128_GCM_SHA256");
	SSL_CTX_set_psk_use_session_callback(cctx, use_psk);
	ck_assert_ptr_nonnull(cli = SSL_new(cctx));
	ck_assert_ptr_nonnull(csess = SSL_SESSION_new());
	ck_assert(SSL_SESSION_set1_master_key(csess, hp.psk, hp.len));
	ck_assert(SSL_SESSION_set_cipher(csess, SSL_CIPHER_find(cli,
	    (const unsigned char *)"\x13\x01")));
	ck_assert(SSL_SESSION_set_protocol_version(csess, TLS1_3_VERSION));
	cin = BIO_new(BIO_s_mem());
	cout = BIO_new(BIO_s_mem());
	SSL_set_bio(cli, cin, cout);
	SSL_set_connect_state(cli);

	for (int i = 0; i < 50 && !(cdone && sdone); i++) {
		uint8_t buf[65536];
		size_t n;

		if (!cdone)
			cdone = SSL_do_handshake(cli) == 1;
		if ((n = client_records(buf, sizeof(buf))) > 0)
			write_all(cfd, buf, n);
		if (!sdone) {
			int rc = tls_conn_handshake(srv, why, sizeof(why));

			ck_assert_msg(rc >= 0, "%s", why);
			sdone = rc == 1;
		}
		client_take();
	}
	ck_assert(cdone && sdone);
}

static void
teardown(void)
{
	tls_conn_free(srv);
	SSL_free(cli);
	SSL_SESSION_free(csess);
	SSL_CTX_free(cctx);
	close(sfd);
	close(cfd);
	config_free(running_config);
	running_config = NULL;
}

/*
 * What an event loop does: read while the socket is readable or TLS says
 * something waits, at most limit times.  The calls made; got grows.
 */
static int
serve(uint8_t *dst, size_t cap, size_t *got, size_t chunk, int limit)
{
	int calls = 0;

	while (calls < limit) {
		struct pollfd pfd = { .fd = sfd, .events = POLLIN };
		struct iovec iov;
		ssize_t n;

		if (poll(&pfd, 1, 0) == 0 && !tls_conn_rx_pending(srv))
			break;
		iov.iov_base = dst + *got;
		iov.iov_len = MINIMUM(chunk, cap - *got);
		calls++;
		n = tls_conn_readv(srv, &iov, 1);
		if (n < 0) {
			ck_assert_int_eq(errno, EAGAIN);
			continue;
		}
		ck_assert_int_gt(n, 0);
		*got += n;
		if (*got == cap)
			break;
	}
	return (calls);
}

/*
 * Records of the given plaintext sizes, their wire bytes split at cut:
 * the first part alone gives the whole records in it and then leaves the
 * loop idle; with the rest, everything arrives, intact.
 */
static void
split_at(const size_t *sizes, int nrec, size_t cut, unsigned seed)
{
	static uint8_t plain[4 * REC], wire[4 * REC_WIRE], got[4 * REC];
	size_t total = 0, wlen, have = 0, whole = 0, off = 0;
	uint64_t r0 = tls_conn_sys_reads(srv);
	int calls;

	for (int i = 0; i < nrec; i++) {
		pattern(plain + total, sizes[i], seed + i);
		ck_assert_int_eq(SSL_write(cli, plain + total, (int)sizes[i]),
		    (int)sizes[i]);
		total += sizes[i];
	}
	wlen = client_records(wire, sizeof(wire));
	if (cut >= wlen)
		return;
	/* Plaintext of the records wholly before cut. */
	for (int i = 0; i < nrec; i++) {
		size_t rl = 5 + ((size_t)wire[off + 3] << 8 | wire[off + 4]);

		if (off + rl > cut)
			break;
		off += rl;
		whole += sizes[i];
	}
	write_all(cfd, wire, cut);
	calls = serve(got, total, &have, sizeof(got), 100);
	ck_assert_msg(have == whole, "cut %zu: %zu bytes, want %zu", cut, have,
	    whole);
	/* Idle at a partial record: a handful of calls, not a spin, and
	 * at most one read(2) per call. */
	ck_assert_msg(calls <= 2, "cut %zu: %d calls", cut, calls);
	ck_assert_msg(!tls_conn_rx_pending(srv), "cut %zu: partial pending",
	    cut);
	ck_assert_uint_le(tls_conn_sys_reads(srv) - r0, (uint64_t)calls);

	write_all(cfd, wire + cut, wlen - cut);
	calls = serve(got, total, &have, sizeof(got), 100);
	ck_assert_uint_eq(have, total);
	ck_assert_int_le(calls, 2);
	ck_assert_mem_eq(got, plain, total);
	ck_assert(!tls_conn_rx_pending(srv));
}

START_TEST(split_every_byte)
{
	static const size_t sizes[] = { 1, 300, 2000 };
	size_t wire = 3 * 22 + 1 + 300 + 2000;

	for (size_t cut = 1; cut < wire; cut++)
		split_at(sizes, 3, cut, (unsigned)cut);
}
END_TEST

START_TEST(split_full_record)
{
	static const size_t sizes[] = { REC, 100 };
	static const size_t cuts[] = { 1, 2, 3, 4, 5, 6, 7, 4096, REC,
	    REC + 21, REC + 22, REC + 23, REC + 22 + 5, REC + 22 + 121 };

	for (size_t i = 0; i < sizeof(cuts) / sizeof(cuts[0]); i++)
		split_at(sizes, 2, cuts[i], (unsigned)i);
}
END_TEST

/* Eight full records at once: one read(2) takes them all. */
START_TEST(many_records_one_read)
{
	static uint8_t plain[8 * REC], wire[8 * REC_WIRE], got[8 * REC];
	struct iovec iov[2];
	uint64_t r0;
	size_t wlen, have = 0;
	ssize_t n;

	pattern(plain, sizeof(plain), 7);
	ck_assert_int_eq(SSL_write(cli, plain, sizeof(plain)), sizeof(plain));
	wlen = client_records(wire, sizeof(wire));
	ck_assert_uint_eq(wlen, 8 * (REC + 22));
	write_all(cfd, wire, wlen);

	/* Into a header buffer and a payload, as the queue pair reads. */
	r0 = tls_conn_sys_reads(srv);
	iov[0].iov_base = got;
	iov[0].iov_len = 24;
	iov[1].iov_base = got + 24;
	iov[1].iov_len = sizeof(got) - 24;
	n = tls_conn_readv(srv, iov, 2);
	ck_assert_int_eq(n, sizeof(plain));
	ck_assert_mem_eq(got, plain, sizeof(plain));
	ck_assert_uint_eq(tls_conn_sys_reads(srv) - r0, 1);
	ck_assert(!tls_conn_rx_pending(srv));

	/* In 4 KiB pieces: the buffered records serve the reads that a
	 * short one left, no further system call. */
	ck_assert_int_eq(SSL_write(cli, plain, sizeof(plain)), sizeof(plain));
	write_all(cfd, wire, client_records(wire, sizeof(wire)));
	r0 = tls_conn_sys_reads(srv);
	memset(got, 0, sizeof(got));
	ck_assert_int_le(serve(got, sizeof(got), &have, 4096, 200), 32);
	ck_assert_uint_eq(have, sizeof(plain));
	ck_assert_mem_eq(got, plain, sizeof(plain));
	ck_assert_uint_le(tls_conn_sys_reads(srv) - r0, 1);

	/* Nothing there: EAGAIN after one system call. */
	r0 = tls_conn_sys_reads(srv);
	n = tls_conn_readv(srv, iov, 2);
	ck_assert_int_eq(n, -1);
	ck_assert_int_eq(errno, EAGAIN);
	ck_assert_uint_eq(tls_conn_sys_reads(srv) - r0, 1);
}
END_TEST

/* A record header announcing more than TLS allows: an error, no wait. */
START_TEST(oversized_record)
{
	static const uint8_t hdr[] = { 0x17, 0x03, 0x03, 0xff, 0xff, 1, 2, 3 };
	uint8_t buf[64];
	struct iovec iov = { buf, sizeof(buf) };
	ssize_t n = 0;
	int i;

	write_all(cfd, hdr, sizeof(hdr));
	for (i = 0; i < 4; i++)
		if ((n = tls_conn_readv(srv, &iov, 1)) >= 0 || errno != EAGAIN)
			break;
	ck_assert_int_eq(n, -1);
	ck_assert_int_ne(errno, EAGAIN);
	ck_assert_int_lt(i, 2);
}
END_TEST

/* A record of garbage: refused (bad MAC), not waited for. */
START_TEST(garbage_record)
{
	uint8_t rec[5 + 200], buf[64];
	struct iovec iov = { buf, sizeof(buf) };

	pattern(rec, sizeof(rec), 3);
	rec[0] = 0x17;
	rec[1] = rec[2] = 0x03;
	rec[3] = 0;
	rec[4] = 200;
	write_all(cfd, rec, sizeof(rec));
	ck_assert_int_eq(tls_conn_readv(srv, &iov, 1), -1);
	ck_assert_int_ne(errno, EAGAIN);
}
END_TEST

/* The peer goes away inside a record: end of stream, nothing pending. */
START_TEST(eof_inside_record)
{
	uint8_t wire[REC_WIRE], buf[512];
	struct iovec iov = { buf, sizeof(buf) };
	size_t wlen;
	ssize_t n;

	ck_assert_int_eq(SSL_write(cli, "0123456789", 10), 10);
	wlen = client_records(wire, sizeof(wire));
	write_all(cfd, wire, wlen - 3);
	shutdown(cfd, SHUT_WR);
	/* The first read may stop at the short read before the end. */
	n = tls_conn_readv(srv, &iov, 1);
	if (n < 0) {
		ck_assert_int_eq(errno, EAGAIN);
		n = tls_conn_readv(srv, &iov, 1);
	}
	ck_assert_int_eq(n, 0);
	ck_assert(!tls_conn_rx_pending(srv));
}
END_TEST

/* The client's plaintext of what the server wrote; the records are
 * checked for size on the way. */
static size_t
client_read(uint8_t *dst, size_t cap, size_t *maxrec)
{
	static uint8_t wire[1 << 20];
	static size_t len;	/* a partial record waits here */
	size_t have = 0, off = 0;
	ssize_t n;

	for (int i = 0; i < 4096; i++) {
		if ((n = read(cfd, wire + len, sizeof(wire) - len)) <= 0)
			break;
		len += n;
	}
	/* Whole records only go to the client; the rest waits. */
	while (len - off >= 5) {
		size_t rl = 5 + ((size_t)wire[off + 3] << 8 | wire[off + 4]);

		if (len - off < rl)
			break;
		if (rl - 5 - 17 > *maxrec)
			*maxrec = rl - 5 - 17;	/* tag 16, type 1 */
		ck_assert_int_eq(BIO_write(cin, wire + off, (int)rl), (int)rl);
		off += rl;
	}
	memmove(wire, wire + off, len - off);
	len -= off;
	for (int i = 0; i < 4096 && have < cap; i++) {
		size_t got;

		if (SSL_read_ex(cli, dst + have, cap - have, &got) != 1)
			break;
		have += got;
	}
	return (have);
}

/*
 * Large writes as the queue pair makes them (a header, then a payload in
 * pieces), into a small socket buffer: every byte arrives, in records of
 * at most 16 KiB, however often the socket was full.
 */
START_TEST(large_writes)
{
	enum { PDUS = 12, PAY = 131072 };
	static uint8_t pay[PDUS][PAY], got[PDUS * (PAY + 24)],
	    want[PDUS * (PAY + 24)];
	uint8_t hdr[PDUS][24];
	size_t wlen = 0, have = 0, maxrec = 0, sent = 0;
	int sb = 32768, full = 0, i;

	ck_assert_int_eq(setsockopt(sfd, SOL_SOCKET, SO_SNDBUF, &sb,
	    sizeof(sb)), 0);
	for (int p = 0; p < PDUS; p++) {
		pattern(hdr[p], 24, 100 + p);
		pattern(pay[p], PAY, 200 + p);
		memcpy(want + wlen, hdr[p], 24);
		memcpy(want + wlen + 24, pay[p], PAY);
		wlen += 24 + PAY;
	}
	for (i = 0; i < 20000 && have < wlen; i++) {
		struct iovec iov[3 * PDUS], v[3 * PDUS];
		int cnt = 0, k;
		ssize_t n;

		/* Header, and the payload in pieces of 64 KiB, like a
		 * read's buffers. */
		for (int p = 0; p < PDUS; p++) {
			iov[cnt++] = (struct iovec){ hdr[p], 24 };
			iov[cnt++] = (struct iovec){ pay[p], PAY / 2 };
			iov[cnt++] = (struct iovec){ pay[p] + PAY / 2, PAY / 2 };
		}
		if (sent < wlen) {
			memcpy(v, iov, sizeof(iov));
			k = iov_skip(v, cnt, sent);
			n = tls_conn_sendv(srv, v, k);
			ck_assert_msg(n >= 0 || errno == EAGAIN, "sendv: %s",
			    strerror(errno));
			if (n > 0)
				sent += n;
			if (sent < wlen)
				full++;
		} else if (tls_conn_tx_pending(srv)) {
			ck_assert(tls_conn_flush(srv) == 0 || errno == EAGAIN);
		}
		have += client_read(got + have, wlen - have, &maxrec);
	}
	ck_assert_uint_eq(have, wlen);
	ck_assert_mem_eq(got, want, wlen);
	ck_assert_uint_le(maxrec, REC);
	ck_assert_uint_gt(maxrec, REC - 64);	/* full records, too */
	ck_assert_int_gt(full, 0);		/* the socket was full */
	ck_assert(!tls_conn_tx_pending(srv));
}
END_TEST

/* Records opened into odd scatter lists: every byte in its place. */
START_TEST(scattered_reads)
{
	static const size_t cuts[][3] = { { 7, 9000, 40000 },
	    { 1, 16383, 40000 }, { 16384, 1, 40000 }, { 24, 131072, 1 } };
	static uint8_t plain[3 * REC + 100], got[3 * REC + 100];
	uint8_t wire[4 * REC_WIRE];
	size_t total = sizeof(plain), wlen;

	for (size_t c = 0; c < sizeof(cuts) / sizeof(cuts[0]); c++) {
		size_t have = 0;
		uint8_t *a = malloc(cuts[c][0]), *b = malloc(cuts[c][1]),
		    *d = malloc(cuts[c][2]);

		pattern(plain, total, 40 + c);
		ck_assert_int_eq(SSL_write(cli, plain, (int)total), (int)total);
		wlen = client_records(wire, sizeof(wire));
		write_all(cfd, wire, wlen);
		for (int i = 0; i < 64 && have < total; i++) {
			struct iovec iov[3] = { { a, cuts[c][0] },
			    { b, cuts[c][1] }, { d, cuts[c][2] } }, v[3];
			size_t room = cuts[c][0] + cuts[c][1] + cuts[c][2];
			ssize_t n;
			int k;

			memcpy(v, iov, sizeof(iov));
			k = iov_skip(v, 3, 0);
			n = tls_conn_readv(srv, v, k);
			ck_assert_int_gt(n, 0);
			ck_assert_uint_le((size_t)n, room);
			for (int j = 0, left = (int)n; j < 3 && left > 0; j++) {
				size_t l = MINIMUM((size_t)left, iov[j].iov_len);

				memcpy(got + have, iov[j].iov_base, l);
				have += l;
				left -= (int)l;
			}
		}
		ck_assert_uint_eq(have, total);
		ck_assert_mem_eq(got, plain, total);
		free(a);
		free(b);
		free(d);
	}
}
END_TEST

/* Everything the server has for the client, read back by the client. */
static void
server_to_client(const uint8_t *p, size_t len)
{
	static uint8_t got[2 * REC];
	struct iovec iov = { (void *)(uintptr_t)p, len };
	size_t have = 0, maxrec = 0;

	ck_assert_uint_le(len, sizeof(got));
	ck_assert_int_eq(tls_conn_sendv(srv, &iov, 1), (ssize_t)len);
	for (int i = 0; i < 64 && have < len; i++)
		have += client_read(got + have, len - have, &maxrec);
	ck_assert_uint_eq(have, len);
	ck_assert_mem_eq(got, p, len);
}

/* Data from the client, through the server, intact. */
static void
client_to_server(const uint8_t *p, size_t len)
{
	static uint8_t wire[4 * REC_WIRE], got[2 * REC];
	size_t have = 0;

	ck_assert_int_eq(SSL_write(cli, p, (int)len), (int)len);
	write_all(cfd, wire, client_records(wire, sizeof(wire)));
	serve(got, len, &have, sizeof(got), 100);
	ck_assert_uint_eq(have, len);
	ck_assert_mem_eq(got, p, len);
}

/*
 * The client moves to new keys, once asking the server to do the same:
 * both directions carry on (RFC 8446 4.6.3), as OpenSSL's own records do.
 */
START_TEST(key_update)
{
	static uint8_t data[REC + 500];

	for (int round = 0; round < 3; round++) {
		pattern(data, sizeof(data), 60 + round);
		ck_assert_int_eq(SSL_key_update(cli, round == 1 ?
		    SSL_KEY_UPDATE_NOT_REQUESTED :
		    SSL_KEY_UPDATE_REQUESTED), 1);
		client_to_server(data, sizeof(data));
		server_to_client(data, sizeof(data));
	}
}
END_TEST

/* close_notify from the client: end of stream, not an error. */
START_TEST(close_notify)
{
	uint8_t wire[REC_WIRE], buf[64];
	struct iovec iov = { buf, sizeof(buf) };

	client_to_server((const uint8_t *)"last words", 10);
	ck_assert_int_eq(SSL_shutdown(cli), 0);
	write_all(cfd, wire, client_records(wire, sizeof(wire)));
	ck_assert_int_eq(tls_conn_readv(srv, &iov, 1), 0);
}
END_TEST

/* One bit flipped in a genuine record: refused as not genuine. */
START_TEST(tampered_record)
{
	uint8_t wire[REC_WIRE], buf[4096];
	struct iovec iov = { buf, sizeof(buf) };
	size_t wlen;

	pattern(buf, 3000, 9);
	ck_assert_int_eq(SSL_write(cli, buf, 3000), 3000);
	wlen = client_records(wire, sizeof(wire));
	wire[wlen / 2] ^= 0x10;
	write_all(cfd, wire, wlen);
	ck_assert_int_eq(tls_conn_readv(srv, &iov, 1), -1);
	ck_assert_int_eq(errno, EBADMSG);
}
END_TEST

static Suite *
tls_conn_suite(void)
{
	Suite *s = suite_create("tls_conn");
	TCase *tc = tcase_create("records");

	tcase_add_checked_fixture(tc, setup, teardown);
	tcase_set_timeout(tc, 600);	/* a hang guard only */
	tcase_add_test(tc, split_every_byte);
	tcase_add_test(tc, split_full_record);
	tcase_add_test(tc, many_records_one_read);
	tcase_add_test(tc, oversized_record);
	tcase_add_test(tc, garbage_record);
	tcase_add_test(tc, eof_inside_record);
	tcase_add_test(tc, large_writes);
	tcase_add_test(tc, scattered_reads);
	tcase_add_test(tc, key_update);
	tcase_add_test(tc, close_notify);
	tcase_add_test(tc, tampered_record);
	suite_add_tcase(s, tc);
	return (s);
}

int
main(void)
{
	SRunner *sr = srunner_create(tls_conn_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return (failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS);
}
