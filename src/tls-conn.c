/*
 * TLS 1.3 under an NVMe/TCP queue pair: the server context (PSK only, no
 * tickets, no renegotiation) and its non-blocking handshake, the client's
 * blocking one (host role, perf), and record I/O behind the same
 * readv/sendmsg-like calls the plain socket has (stream_readv/stream_sendv
 * in nvmfd.h).
 *
 * Reads: after the handshake the ciphertext comes through a buffer of our
 * own (struct tls_rx, several records long) that one read(2) fills as far
 * as the socket has data.  Knowing where its records end, tls_conn_readv()
 * hands OpenSSL only whole records: it never asks the socket again once a
 * read came back short, and a partial record is not "pending" (the queue
 * pair would poll it in a loop until the rest arrived).
 *
 * Writes: small PDUs gathered in one loop turn are copied into one stage
 * and written with one SSL_write, so many PDUs share a record; a payload of
 * a whole record or more is encrypted where it lies, in records of 16 KiB.
 * The records of a turn leave back to back through a buffer in front of
 * the socket.  Bytes taken into the stage belong to the stream; the queue
 * pair counts them as sent.
 */
#include "config.h"

#include <errno.h>
#include <pthread.h>
#include <unistd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "nvmfd.h"
#include "tls.h"

#define TLS_STAGE	(64 * 1024)	/* plaintext per SSL_write: 4 records */
#define TLS_REC		16384		/* plaintext per record, at most */
#define TLS_REC_HDR	5
#define TLS_REC_WIRE	(TLS_REC_HDR + TLS_REC + 256)	/* TLS 1.3 at most */
#define TLS_RBUF	(8 * TLS_REC_WIRE) /* ciphertext read per system call */
#define TLS_WBUF	(256 * 1024)	/* ciphertext written per system call */

/* Ciphertext read from the socket and not yet taken by OpenSSL. */
struct tls_rx {
	uint8_t		*buf;		/* TLS_RBUF */
	size_t		off, len;
	bool		drained;	/* the last read(2) came back short */
	bool		eof;
	uint64_t	sys_reads;
};

struct tls_conn {
	SSL		*ssl;
	char		peer[80];
	char		hostnqn[224];	/* from the PSK identity */
	char		subnqn[224];
	bool		have_identity;
	uint8_t		*stage;
	size_t		slen, soff;	/* staged bytes, of which written */
	SSL_SESSION	*client_psk;	/* client: the session to offer */
	char		*client_id;
	int		fd;
	struct tls_rx	rx;		/* buf NULL: OpenSSL reads the socket */
	tls_psk_lookup_fn lookup;	/* server, not NVMe: the PSK by name */
	void		*lookup_arg;
	char		identity[TLS_EXT_IDENTITY_MAX + 1];	/* its name */
};

static int flush_records(struct tls_conn *);
static void buffer_writes(struct tls_conn *);
static int buffer_reads(struct tls_conn *);

static SSL_CTX *server_ctx;
static SSL_CTX *client_ctx;
static SSL_CTX *ext_ctx;	/* PSKs by name (NBD), not NVMe identities */
static pthread_mutex_t client_mtx = PTHREAD_MUTEX_INITIALIZER;

/* The first queued OpenSSL error, for a log line; clears the queue. */
static const char *
tls_error(char *buf, size_t len)
{
	unsigned long e = ERR_get_error();

	if (e == 0)
		snprintf(buf, len, "connection closed");
	else
		ERR_error_string_n(e, buf, len);
	ERR_clear_error();
	return (buf);
}

static const unsigned char *
suite_id(int hash)
{
	static const unsigned char aes128[] = { 0x13, 0x01 };
	static const unsigned char aes256[] = { 0x13, 0x02 };

	return (hash == 2 ? aes256 : aes128);
}

/* Printable and bounded, for logging what a peer sent. */
static void
sanitize(const uint8_t *in, size_t len, char *out, size_t outsz)
{
	size_t n = 0;

	for (size_t i = 0; i < len && n + 1 < outsz; i++)
		out[n++] = in[i] >= 0x20 && in[i] < 0x7f ? in[i] : '?';
	out[n] = '\0';
}

/*
 * The host's PSK for the identity in its ClientHello.  Returning 1 with
 * *sess NULL makes the handshake fail cleanly (unknown identity); 0 would
 * abort it with an internal error.
 */
static int
psk_find_cb(SSL *ssl, const unsigned char *id, size_t idlen,
    SSL_SESSION **sess)
{
	struct tls_conn *t = SSL_get_app_data(ssl);
	const struct host_tls *hk;
	struct tls_identity ti;
	char idstr[TLS_IDENTITY_MAX + 1];
	uint8_t psk[TLS_PSK_MAX];
	size_t psklen = 0;
	SSL_SESSION *s;
	int rc;

	*sess = NULL;
	if (tls_identity_parse(id, idlen, &ti) != 0) {
		sanitize(id, MINIMUM(idlen, 120), idstr, sizeof(idstr));
		log_peer_warnx("%s: TLS: not an NVMe PSK identity: \"%s\"", t->peer,
		    idstr);
		return (1);
	}
	memcpy(idstr, id, idlen);
	idstr[idlen] = '\0';
	if ((hk = host_tls_find(running_config, ti.subnqn,
	    ti.hostnqn)) == NULL) {
		log_peer_warnx("%s: TLS: no key for host %s on %s", t->peer,
		    ti.hostnqn, ti.subnqn);
		return (1);
	}
	rc = tls_psk_for_identity(&hk->key, &ti, idstr, hk->kdf, psk, &psklen);
	/* A version 1 identity's digest tells which layout the host used. */
	if (rc != 0 && ti.version == 1)
		rc = tls_psk_for_identity(&hk->key, &ti, idstr,
		    hk->kdf == TLS_KDF_COMPAT ? TLS_KDF_RFC8446 :
		    TLS_KDF_COMPAT, psk, &psklen);
	if (rc != 0) {
		log_peer_warnx("%s: TLS: identity NVMe%d%c%02d for host %s on %s "
		    "does not fit the configured key", t->peer, ti.version,
		    ti.type, ti.hash, ti.hostnqn, ti.subnqn);
		return (1);
	}
	if ((s = SSL_SESSION_new()) == NULL ||
	    !SSL_SESSION_set1_master_key(s, psk, psklen) ||
	    !SSL_SESSION_set_cipher(s, SSL_CIPHER_find(ssl,
	    suite_id(ti.hash))) ||
	    !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
		OPENSSL_cleanse(psk, sizeof(psk));
		SSL_SESSION_free(s);
		return (0);
	}
	OPENSSL_cleanse(psk, sizeof(psk));
	snprintf(t->hostnqn, sizeof(t->hostnqn), "%s", ti.hostnqn);
	snprintf(t->subnqn, sizeof(t->subnqn), "%s", ti.subnqn);
	t->have_identity = true;
	*sess = s;
	return (1);
}

/* The settings both roles share. */
static SSL_CTX *
ctx_new(const SSL_METHOD *method)
{
	SSL_CTX *ctx;

	if ((ctx = SSL_CTX_new(method)) == NULL)
		return (NULL);
	SSL_CTX_set_min_proto_version(ctx, TLS1_3_VERSION);
	SSL_CTX_set_max_proto_version(ctx, TLS1_3_VERSION);
	if (!SSL_CTX_set_ciphersuites(ctx,
	    "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384")) {
		SSL_CTX_free(ctx);
		return (NULL);
	}
	/* A ticket would be a record the Linux host does not expect
	 * before ICResp; TLS 1.3 has no renegotiation. */
	SSL_CTX_set_num_tickets(ctx, 0);
	SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET | SSL_OP_NO_RENEGOTIATION |
	    SSL_OP_IGNORE_UNEXPECTED_EOF
#ifdef SSL_OP_ENABLE_KTLS
	    | SSL_OP_ENABLE_KTLS	/* used where the kernel offers it */
#endif
	    );
	SSL_CTX_set_mode(ctx, SSL_MODE_ENABLE_PARTIAL_WRITE |
	    SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
	SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
	/* No read-ahead: the handshake must leave what follows it in the
	 * socket, for the buffer buffer_reads() puts in front of it. */
	SSL_CTX_set_read_ahead(ctx, 0);
	return (ctx);
}

/* The server side of a connection on fd, before its handshake. */
static struct tls_conn *
server_conn_new(SSL_CTX *ctx, int fd, const char *peer)
{
	struct tls_conn *t;

	if ((t = calloc(1, sizeof(*t))) == NULL)
		return (NULL);
	snprintf(t->peer, sizeof(t->peer), "%s", peer);
	t->fd = fd;
	if ((t->ssl = SSL_new(ctx)) == NULL || !SSL_set_fd(t->ssl, fd)) {
		ERR_clear_error();
		tls_conn_free(t);
		return (NULL);
	}
	SSL_set_app_data(t->ssl, t);
	SSL_set_accept_state(t->ssl);
	return (t);
}

/*
 * A PSK found by its identity as given, as GnuTLS's PSK files name them
 * (NBD: qemu, nbdkit, libnbd).  The key is the PSK itself, used with
 * SHA-256 as GnuTLS does.
 */
static int
ext_psk_find_cb(SSL *ssl, const unsigned char *id, size_t idlen,
    SSL_SESSION **sess)
{
	struct tls_conn *t = SSL_get_app_data(ssl);
	char idstr[TLS_EXT_IDENTITY_MAX + 1];
	uint8_t psk[TLS_EXT_PSK_MAX];
	size_t psklen = 0;
	SSL_SESSION *s;

	*sess = NULL;
	sanitize(id, MINIMUM(idlen, TLS_EXT_IDENTITY_MAX), idstr,
	    sizeof(idstr));
	/* Printable and not too long, or it names no key of ours. */
	if (idlen > TLS_EXT_IDENTITY_MAX || memcmp(idstr, id, idlen) != 0 ||
	    t->lookup(t->lookup_arg, idstr, psk, &psklen) != 0) {
		log_peer_warnx("%s: TLS: unknown PSK identity \"%s\"", t->peer,
		    idstr);
		return (1);
	}
	if ((s = SSL_SESSION_new()) == NULL ||
	    !SSL_SESSION_set1_master_key(s, psk, psklen) ||
	    !SSL_SESSION_set_cipher(s, SSL_CIPHER_find(ssl, suite_id(1))) ||
	    !SSL_SESSION_set_protocol_version(s, TLS1_3_VERSION)) {
		OPENSSL_cleanse(psk, sizeof(psk));
		SSL_SESSION_free(s);
		return (0);
	}
	OPENSSL_cleanse(psk, sizeof(psk));
	snprintf(t->identity, sizeof(t->identity), "%s", idstr);
	*sess = s;
	return (1);
}

/* Server side of a connection whose PSKs lookup() finds by name. */
struct tls_conn *
tls_conn_accept_psk(int fd, const char *peer, tls_psk_lookup_fn lookup,
    void *arg)
{
	struct tls_conn *t;

	if (ext_ctx == NULL) {
		if ((ext_ctx = ctx_new(TLS_server_method())) == NULL)
			return (NULL);
		/* SHA-256 suites only: the hash the PSK is used with. */
		if (!SSL_CTX_set_ciphersuites(ext_ctx, "TLS_AES_128_GCM_SHA256:"
		    "TLS_CHACHA20_POLY1305_SHA256")) {
			SSL_CTX_free(ext_ctx);
			ext_ctx = NULL;
			return (NULL);
		}
		SSL_CTX_set_psk_find_session_callback(ext_ctx,
		    ext_psk_find_cb);
		/* AES-GCM where the client offers it (GnuTLS may list
		 * ChaCha20 first): the one with hardware help. */
		SSL_CTX_set_options(ext_ctx, SSL_OP_CIPHER_SERVER_PREFERENCE);
	}
	if ((t = server_conn_new(ext_ctx, fd, peer)) != NULL) {
		t->lookup = lookup;
		t->lookup_arg = arg;
	}
	return (t);
}

const char *
tls_conn_identity(struct tls_conn *t)
{
	return (t->identity);
}

int
tls_server_init(void)
{
	if (server_ctx != NULL)
		return (0);
	if ((server_ctx = ctx_new(TLS_server_method())) == NULL)
		return (-1);
	SSL_CTX_set_psk_find_session_callback(server_ctx, psk_find_cb);
	return (0);
}

void
tls_server_free(void)
{
	SSL_CTX_free(server_ctx);
	server_ctx = NULL;
	SSL_CTX_free(ext_ctx);
	ext_ctx = NULL;
}

/* Client: offer the one PSK.  md is set after a HelloRetryRequest. */
static int
psk_use_cb(SSL *ssl, const EVP_MD *md, const unsigned char **id,
    size_t *idlen, SSL_SESSION **sess)
{
	struct tls_conn *t = SSL_get_app_data(ssl);
	const SSL_CIPHER *c = SSL_SESSION_get0_cipher(t->client_psk);

	*sess = NULL;
	if (md != NULL && md != SSL_CIPHER_get_handshake_digest(c))
		return (1);
	if (!SSL_SESSION_up_ref(t->client_psk))
		return (0);
	*sess = t->client_psk;
	*id = (const unsigned char *)t->client_id;
	*idlen = strlen(t->client_id);
	return (1);
}

/*
 * Host role: a blocking handshake on a connected blocking socket, offering
 * identity with the TLS PSK psk (hash: 1 SHA-256, 2 SHA-384).
 */
struct tls_conn *
tls_conn_connect(int fd, const char *peer, const char *identity,
    const uint8_t *psk, size_t psklen, int hash, char *err, size_t errlen)
{
	struct tls_conn *t;
	char e[160];

	pthread_mutex_lock(&client_mtx);
	if (client_ctx == NULL && (client_ctx =
	    ctx_new(TLS_client_method())) != NULL)
		SSL_CTX_set_psk_use_session_callback(client_ctx, psk_use_cb);
	pthread_mutex_unlock(&client_mtx);
	if (client_ctx == NULL || (t = calloc(1, sizeof(*t))) == NULL) {
		snprintf(err, errlen, "out of memory");
		return (NULL);
	}
	snprintf(t->peer, sizeof(t->peer), "%s", peer);
	t->fd = fd;
	if ((t->client_id = strdup(identity)) == NULL ||
	    (t->stage = malloc(TLS_STAGE)) == NULL ||
	    (t->ssl = SSL_new(client_ctx)) == NULL ||
	    !SSL_set_fd(t->ssl, fd) ||
	    (t->client_psk = SSL_SESSION_new()) == NULL ||
	    !SSL_SESSION_set1_master_key(t->client_psk, psk, psklen) ||
	    !SSL_SESSION_set_cipher(t->client_psk,
	    SSL_CIPHER_find(t->ssl, suite_id(hash))) ||
	    !SSL_SESSION_set_protocol_version(t->client_psk, TLS1_3_VERSION)) {
		snprintf(err, errlen, "TLS set-up: %s", tls_error(e, sizeof(e)));
		tls_conn_free(t);
		return (NULL);
	}
	SSL_set_app_data(t->ssl, t);
	if (SSL_connect(t->ssl) != 1) {
		snprintf(err, errlen, "%s: TLS handshake failed: %s", peer,
		    tls_error(e, sizeof(e)));
		tls_conn_free(t);
		return (NULL);
	}
	if (buffer_reads(t) != 0) {
		snprintf(err, errlen, "out of memory");
		tls_conn_free(t);
		return (NULL);
	}
	buffer_writes(t);
	return (t);
}

/* Blocking exchange during set-up (host role); 0 or -1. */
int
tls_conn_write_full(struct tls_conn *t, const void *buf, size_t len)
{
	size_t n;

	ERR_clear_error();
	if (SSL_write_ex(t->ssl, buf, len, &n) != 1 || n != len ||
	    flush_records(t) != 0) {
		ERR_clear_error();
		return (-1);
	}
	return (0);
}

int
tls_conn_read_full(struct tls_conn *t, void *buf, size_t len)
{
	size_t got = 0, n;

	ERR_clear_error();
	while (got < len) {
		if (SSL_read_ex(t->ssl, (uint8_t *)buf + got, len - got,
		    &n) != 1) {
			ERR_clear_error();
			return (-1);
		}
		got += n;
	}
	return (0);
}

struct tls_conn *
tls_conn_accept(int fd, const char *peer)
{
	if (tls_server_init() != 0)
		return (NULL);
	return (server_conn_new(server_ctx, fd, peer));
}

void
tls_conn_free(struct tls_conn *t)
{
	if (t == NULL)
		return;
	if (t->ssl != NULL) {
		/* close_notify, best effort: the socket is non-blocking. */
		if (SSL_is_init_finished(t->ssl))
			SSL_shutdown(t->ssl);
		SSL_free(t->ssl);
	}
	ERR_clear_error();
	if (t->stage != NULL) {
		OPENSSL_cleanse(t->stage, TLS_STAGE);
		free(t->stage);
	}
	SSL_SESSION_free(t->client_psk);
	free(t->client_id);
	free(t->rx.buf);
	free(t);
}

/*
 * Records go out one write(2) each; put a buffer in front of the socket
 * so that the records of a loop turn leave in one.  Not under kTLS, where
 * the kernel makes the records.
 */
static void
buffer_writes(struct tls_conn *t)
{
	BIO *sock = SSL_get_wbio(t->ssl), *buf;

	if (BIO_get_ktls_send(sock) || (buf = BIO_new(BIO_f_buffer())) == NULL)
		return;
	if (BIO_set_write_buffer_size(buf, TLS_WBUF) != 1 ||
	    !BIO_up_ref(sock)) {
		BIO_free(buf);
		return;
	}
	BIO_push(buf, sock);
	SSL_set0_wbio(t->ssl, buf);	/* drops the SSL's own reference */
}

/*
 * One read(2) into the receive buffer, after moving what is left of a
 * partial record to its front: the bytes read, 0 at end of stream, or -1
 * with errno.  rx->drained tells whether the socket had less than there
 * was room for.
 */
static ssize_t
rx_fill(struct tls_conn *t)
{
	struct tls_rx *rx = &t->rx;
	ssize_t n;

	if (rx->off > 0) {
		memmove(rx->buf, rx->buf + rx->off, rx->len - rx->off);
		rx->len -= rx->off;
		rx->off = 0;
	}
	/* Never full: it is filled only while it holds less than a record. */
	do {
		rx->sys_reads++;
		n = read(t->fd, rx->buf + rx->len, TLS_RBUF - rx->len);
	} while (n < 0 && errno == EINTR);
	if (n < 0) {
		rx->drained = true;
		return (-1);
	}
	if (n == 0) {
		rx->drained = rx->eof = true;
		return (0);
	}
	rx->drained = (size_t)n < TLS_RBUF - rx->len;
	rx->len += n;
	return (n);
}

/*
 * Is a whole record buffered?  A header announcing more than TLS 1.3
 * allows counts as whole, so that OpenSSL sees it and refuses it rather
 * than the buffer waiting for bytes it has no room for.
 */
static bool
rx_record(const struct tls_rx *rx)
{
	size_t have = rx->len - rx->off, rlen;
	const uint8_t *h = rx->buf + rx->off;

	if (have < TLS_REC_HDR)
		return (false);
	rlen = TLS_REC_HDR + ((size_t)h[3] << 8 | h[4]);
	return (have >= rlen || rlen > TLS_REC_WIRE);
}

/* OpenSSL's reads: from the buffer, which is filled only when empty. */
static int
rx_bio_read(BIO *b, char *out, int len)
{
	struct tls_conn *t = BIO_get_data(b);
	struct tls_rx *rx = &t->rx;
	size_t n;

	BIO_clear_retry_flags(b);
	if (len <= 0)
		return (0);
	if (rx->off == rx->len) {
		if (rx->eof)
			return (0);
		if (rx_fill(t) <= 0) {
			if (rx->eof)
				return (0);
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				BIO_set_retry_read(b);
			return (-1);
		}
	}
	n = MINIMUM((size_t)len, rx->len - rx->off);
	memcpy(out, rx->buf + rx->off, n);
	rx->off += n;
	return ((int)n);
}

static long
rx_bio_ctrl(BIO *b, int cmd, long num, void *ptr)
{
	struct tls_conn *t = BIO_get_data(b);

	(void)num;
	(void)ptr;
	switch (cmd) {
	case BIO_CTRL_FLUSH:
		return (1);
	case BIO_CTRL_EOF:
		return (t->rx.eof && t->rx.off == t->rx.len);
	case BIO_CTRL_PENDING:
		return ((long)(t->rx.len - t->rx.off));
	default:
		return (0);
	}
}

static BIO_METHOD *rx_method;
static pthread_once_t rx_method_once = PTHREAD_ONCE_INIT;

static void
rx_method_init(void)
{
	BIO_METHOD *m;

	if ((m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK,
	    "nvmfd TLS receive buffer")) == NULL)
		return;
	if (!BIO_meth_set_read(m, rx_bio_read) ||
	    !BIO_meth_set_ctrl(m, rx_bio_ctrl)) {
		BIO_meth_free(m);
		return;
	}
	rx_method = m;
}

/*
 * After the handshake: the receive buffer in front of the socket.  Not
 * under kTLS, where the kernel takes records apart.  0, or -1 out of
 * memory.
 */
static int
buffer_reads(struct tls_conn *t)
{
	BIO *b;

	if (t->rx.buf != NULL || BIO_get_ktls_recv(SSL_get_rbio(t->ssl)))
		return (0);
	pthread_once(&rx_method_once, rx_method_init);
	if (rx_method == NULL || (t->rx.buf = malloc(TLS_RBUF)) == NULL)
		return (-1);
	if ((b = BIO_new(rx_method)) == NULL) {
		free(t->rx.buf);
		t->rx.buf = NULL;
		return (-1);
	}
	BIO_set_data(b, t);
	BIO_set_init(b, 1);
	/* Read-ahead is off: OpenSSL holds nothing the socket sent after the
	 * handshake, all of it is still in the socket. */
	SSL_set0_rbio(t->ssl, b);
	return (0);
}

uint64_t
tls_conn_sys_reads(const struct tls_conn *t)
{
	return (t->rx.sys_reads);
}

int
tls_conn_handshake(struct tls_conn *t, char *why, size_t whylen)
{
	char err[160];
	int rc;

	ERR_clear_error();
	if ((rc = SSL_do_handshake(t->ssl)) == 1) {
		if ((t->stage == NULL &&
		    (t->stage = malloc(TLS_STAGE)) == NULL) ||
		    buffer_reads(t) != 0) {
			snprintf(why, whylen, "out of memory");
			return (-1);
		}
		buffer_writes(t);
		return (1);
	}
	switch (SSL_get_error(t->ssl, rc)) {
	case SSL_ERROR_WANT_READ:
		return (0);
	case SSL_ERROR_WANT_WRITE:
		return (2);
	default:
		snprintf(why, whylen, "TLS handshake failed: %s",
		    tls_error(err, sizeof(err)));
		return (-1);
	}
}

const char *
tls_conn_cipher(struct tls_conn *t)
{
	return (SSL_get_cipher_name(t->ssl));
}

bool
tls_conn_names(struct tls_conn *t, const char *hostnqn, const char *subnqn)
{
	return (t->have_identity && strcmp(t->hostnqn, hostnqn) == 0 &&
	    strcmp(t->subnqn, subnqn) == 0);
}

/*
 * Is there something to read without the socket: decrypted bytes, or a
 * whole record?  A partial record is not: its rest comes with the socket.
 */
bool
tls_conn_rx_pending(struct tls_conn *t)
{
	if (SSL_pending(t->ssl) > 0)
		return (true);
	if (t->rx.buf != NULL)
		return (rx_record(&t->rx));
	return (SSL_has_pending(t->ssl));	/* kTLS */
}

bool
tls_conn_tx_pending(struct tls_conn *t)
{
	return (t->soff < t->slen || BIO_wpending(SSL_get_wbio(t->ssl)) > 0);
}

/* Records buffered in front of the socket: out.  0, or -1 with errno. */
static int
flush_records(struct tls_conn *t)
{
	BIO *w = SSL_get_wbio(t->ssl);

	if (BIO_wpending(w) <= 0)
		return (0);
	errno = 0;
	if (BIO_flush(w) == 1)
		return (0);
	if (BIO_should_retry(w)) {
		errno = EAGAIN;
		return (-1);
	}
	if (errno == 0)
		errno = EPIPE;
	ERR_clear_error();
	return (-1);
}

/* errno for an SSL I/O failure: EAGAIN to wait, anything else is fatal. */
static int
ssl_errno(struct tls_conn *t, int rc)
{
	char err[160];
	int e = SSL_get_error(t->ssl, rc);

	if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE)
		return (EAGAIN);
	if (e == SSL_ERROR_SYSCALL && errno != 0) {
		ERR_clear_error();
		return (errno);
	}
	log_debug("%s: TLS: %s", t->peer, tls_error(err, sizeof(err)));
	return (EPROTO);
}

/*
 * Read plaintext into iov: what OpenSSL has decrypted, then whole records
 * from the buffer, refilled with one read(2) each time it holds no whole
 * record, until iov is full or a read comes back short (the socket is
 * drained: asking again would cost a system call to learn EAGAIN).  Under
 * kTLS OpenSSL reads the socket, a record a time.  The bytes read, 0 at
 * the end of the stream, or -1 with errno (EAGAIN: no whole record yet).
 */
ssize_t
tls_conn_readv(struct tls_conn *t, const struct iovec *iov, int cnt)
{
	struct tls_rx *rx = &t->rx;
	bool own = rx->buf != NULL;
	size_t total = 0, n;
	int rc, e, guard = 0;

	rx->drained = false;	/* a new readable event: ask the socket */
	for (int i = 0; i < cnt; i++) {
		uint8_t *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		/* Each turn takes a record or reads the socket once; the
		 * guard only bounds a peer that makes OpenSSL take nothing
		 * (it fails the connection first). */
		while (left > 0 && ++guard < 4096) {
			if (own && SSL_pending(t->ssl) == 0 && !rx_record(rx)) {
				if (rx->drained || rx->eof)
					goto out;
				if (rx_fill(t) < 0 && errno != EAGAIN &&
				    errno != EWOULDBLOCK)
					return (total > 0 ? (ssize_t)total : -1);
				continue;
			}
			errno = 0;
			if ((rc = SSL_read_ex(t->ssl, p, left, &n)) <= 0) {
				e = SSL_get_error(t->ssl, rc);
				/* A record without data (a key update, say). */
				if (own && e == SSL_ERROR_WANT_READ)
					continue;
				if (total > 0)
					return (total);	/* the rest next time */
				if (e == SSL_ERROR_ZERO_RETURN)
					return (0);
				errno = ssl_errno(t, rc);
				return (-1);
			}
			p += n;
			left -= n;
			total += n;
			/* kTLS: nothing decrypted left, the socket is likely
			 * empty too; the next readable event brings the rest. */
			if (!own && left > 0 && !SSL_has_pending(t->ssl))
				return (total);
		}
	}
 out:
	if (total > 0)
		return (total);
	if (rx->eof) {
		if (rx->off < rx->len)
			log_debug("%s: TLS: connection closed inside a record",
			    t->peer);
		return (0);
	}
	errno = EAGAIN;
	return (-1);
}

/* Make records of what is staged; 0, or -1 with errno. */
static int
stage_out(struct tls_conn *t)
{
	size_t n;
	int rc;

	while (t->soff < t->slen) {
		errno = 0;
		rc = SSL_write_ex(t->ssl, t->stage + t->soff, t->slen - t->soff,
		    &n);
		if (rc <= 0) {
			errno = ssl_errno(t, rc);
			return (-1);
		}
		t->soff += n;
	}
	t->soff = t->slen = 0;
	return (0);
}

/* Write what is staged and buffered; 0 when all of it went out, else -1
 * with errno (EAGAIN: the socket is full). */
int
tls_conn_flush(struct tls_conn *t)
{
	if (stage_out(t) != 0)
		return (-1);
	return (flush_records(t));
}

/*
 * Encrypt len bytes (at least a record) where they lie, whole records
 * only; the bytes taken.  When the socket is full, the record OpenSSL has
 * made but not written is copied to the stage and counted as taken, so
 * that the retry comes from the stage, as for staged bytes.
 */
static size_t
write_direct(struct tls_conn *t, const uint8_t *p, size_t len)
{
	size_t total = 0, n;
	int rc;

	while (len - total >= TLS_REC) {
		errno = 0;
		rc = SSL_write_ex(t->ssl, p + total, TLS_REC, &n);
		if (rc <= 0) {
			if ((errno = ssl_errno(t, rc)) == EAGAIN) {
				memcpy(t->stage, p + total, TLS_REC);
				t->soff = 0;
				t->slen = TLS_REC;
				total += TLS_REC;
			}
			break;
		}
		total += n;
	}
	return (total);
}

/*
 * Take bytes from iov and make records of them; returns how many were
 * taken (fewer than offered only when the socket is full), or -1.  Small
 * pieces are gathered in the stage; where a piece holds a whole record
 * from a record boundary on, that record is made from it in place.  The
 * records go out together at the end.
 */
ssize_t
tls_conn_sendv(struct tls_conn *t, const struct iovec *iov, int cnt)
{
	size_t total = 0, n;

	if (tls_conn_tx_pending(t) && tls_conn_flush(t) != 0)
		return (-1);
	for (int i = 0; i < cnt; i++) {
		const uint8_t *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left > 0) {
			if (t->slen % TLS_REC == 0 && left >= TLS_REC) {
				/* The stage's records first, then this one's. */
				if (stage_out(t) != 0)
					return (errno == EAGAIN ?
					    (ssize_t)total : -1);
				n = write_direct(t, p, left);
				p += n;
				left -= n;
				total += n;
				if (t->slen > 0 || left >= TLS_REC) {
					if (errno == EAGAIN)
						return (total);
					return (-1);
				}
				continue;
			}
			/* Up to the next record boundary, so that a large
			 * piece goes on in whole records. */
			n = MINIMUM(left, TLS_STAGE - t->slen);
			if (left >= TLS_REC)
				n = MINIMUM(n, TLS_REC - t->slen % TLS_REC);
			memcpy(t->stage + t->slen, p, n);
			t->slen += n;
			p += n;
			left -= n;
			total += n;
			if (t->slen == TLS_STAGE && stage_out(t) != 0)
				return (errno == EAGAIN ? (ssize_t)total : -1);
		}
	}
	if (tls_conn_flush(t) != 0 && errno != EAGAIN)
		return (-1);
	return (total);
}
