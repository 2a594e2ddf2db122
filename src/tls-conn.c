/*
 * TLS 1.3 under an NVMe/TCP queue pair: the server context (PSK only, no
 * tickets, no renegotiation) and its non-blocking handshake, the client's
 * blocking one (host role, perf), and record I/O behind the same
 * readv/sendmsg-like calls the plain socket has (stream_readv/stream_sendv
 * in nvmfd.h).
 *
 * OpenSSL does the handshake.  Then, unless the kernel does records
 * (kTLS, through OpenSSL), the records are ours (tls-record.c), with the
 * traffic secrets OpenSSL reports through its key log callback:
 *
 * Reads: the ciphertext comes through a buffer of our own (struct tls_rx,
 * several records long) that one read(2) fills as far as the socket has
 * data.  A whole record is opened straight into the caller's iovecs when
 * they have room for it, else in place in the buffer and copied out.  A
 * read that came back short is not repeated (the socket is drained), and a
 * partial record is not "pending" (the queue pair would poll it in a loop
 * until the rest arrived).
 *
 * Writes: the caller's iovecs are sealed into records of up to 16 KiB,
 * many small PDUs sharing one, straight into a buffer in front of the
 * socket; what a call sealed leaves in one send(2).  Bytes sealed belong
 * to the stream: the queue pair counts them as sent.
 */
#include "config.h"

#include <sys/socket.h>

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

#define TLS_RBUF	(8 * TLS_REC_WIRE) /* ciphertext read per system call */
#define TLS_WBUF	(16 * TLS_REC_SEALED(TLS_REC_MAX)) /* per send(2) */
#define TLS_OPEN_IOV	8	/* scatter list a record is opened into */

/* Ciphertext read from the socket and not yet opened. */
struct tls_rx {
	uint8_t		*buf;		/* TLS_RBUF */
	size_t		off, len;
	size_t		pt_off, pt_len;	/* opened in place, not yet taken */
	size_t		high;		/* the most len ever was */
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
	bool		ktls;		/* OpenSSL and the kernel do records */
	bool		recs;		/* we do: tx and rxr are set */
	struct tls_rec	tx, rxr;
	uint8_t		secret[2][48];	/* client's and server's, from the */
	size_t		secret_len[2];	/* key log until records start */
	uint8_t		*out;		/* TLS_WBUF: records, or kTLS data */
	size_t		olen, ooff;	/* bytes in out, of which sent */
	size_t		ohigh;		/* the most olen ever was */
	SSL_SESSION	*client_psk;	/* client: the session to offer */
	char		*client_id;
	int		fd;
	struct tls_rx	rx;
	tls_psk_lookup_fn lookup;	/* server, not NVMe: the PSK by name */
	void		*lookup_arg;
	char		identity[TLS_EXT_IDENTITY_MAX + 1];	/* its name */
};

static int records_start(struct tls_conn *);
static int out_flush(struct tls_conn *);
static int ssl_errno(struct tls_conn *, int);

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

/*
 * OpenSSL's key log, the one public way to the traffic secrets: keep the
 * two application ones ("LABEL <client random> <secret>", in hex) for
 * records_start().  Nothing is written anywhere.
 */
static void
keylog_cb(const SSL *ssl, const char *line)
{
	static const char *labels[2] = { "CLIENT_TRAFFIC_SECRET_0 ",
	    "SERVER_TRAFFIC_SECRET_0 " };
	struct tls_conn *t = SSL_get_app_data(ssl);
	const char *p = NULL;
	size_t n;
	int w;

	for (w = 0; w < 2 && t != NULL; w++)
		if (strncmp(line, labels[w], strlen(labels[w])) == 0) {
			p = strchr(line + strlen(labels[w]), ' ');
			break;
		}
	if (p == NULL || OPENSSL_hexstr2buf_ex(t->secret[w],
	    sizeof(t->secret[w]), &n, p + 1, '\0') != 1)
		return;
	t->secret_len[w] = n;
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
	 * socket, for the records that records_start() takes over. */
	SSL_CTX_set_read_ahead(ctx, 0);
	SSL_CTX_set_keylog_callback(ctx, keylog_cb);
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
	if (records_start(t) != 0) {
		snprintf(err, errlen, "%s: TLS: cannot take over the records",
		    peer);
		tls_conn_free(t);
		return (NULL);
	}
	return (t);
}

/* Blocking exchange during set-up (host role, a blocking socket); 0 or
 * -1. */
int
tls_conn_write_full(struct tls_conn *t, const void *buf, size_t len)
{
	struct iovec iov = { (void *)(uintptr_t)buf, len };
	size_t done = 0;
	ssize_t n;

	while (done < len) {
		iov.iov_base = (uint8_t *)(uintptr_t)buf + done;
		iov.iov_len = len - done;
		if ((n = tls_conn_sendv(t, &iov, 1)) < 0 && errno != EAGAIN)
			return (-1);
		if (n > 0)
			done += n;
	}
	while (tls_conn_tx_pending(t))
		if (tls_conn_flush(t) != 0 && errno != EAGAIN)
			return (-1);
	return (0);
}

int
tls_conn_read_full(struct tls_conn *t, void *buf, size_t len)
{
	struct iovec iov;
	size_t got = 0;
	ssize_t n;

	while (got < len) {
		iov.iov_base = (uint8_t *)buf + got;
		iov.iov_len = len - got;
		n = tls_conn_readv(t, &iov, 1);
		if (n == 0 || (n < 0 && errno != EAGAIN))
			return (-1);
		if (n > 0)
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

/* A closing alert ends our side; best effort, the socket may be full. */
static void
records_close(struct tls_conn *t)
{
	static const uint8_t close_notify[2] = { 1, 0 };
	struct iovec iov = { (void *)(uintptr_t)close_notify, 2 };
	uint8_t rec[TLS_REC_SEALED(2)];
	ssize_t n;

	if ((n = tls_rec_seal(&t->tx, TLS_CT_ALERT, &iov, 1, 0, 2, rec)) > 0 &&
	    t->ooff == t->olen)
		(void)send(t->fd, rec, n, MSG_NOSIGNAL | MSG_DONTWAIT);
}

void
tls_conn_free(struct tls_conn *t)
{
	if (t == NULL)
		return;
	if (t->recs) {
		records_close(t);
		tls_rec_free(&t->tx);
		tls_rec_free(&t->rxr);
	}
	if (t->ssl != NULL) {
		/* close_notify, best effort: the socket is non-blocking. */
		if (t->ktls && SSL_is_init_finished(t->ssl))
			SSL_shutdown(t->ssl);
		SSL_free(t->ssl);
	}
	ERR_clear_error();
	OPENSSL_cleanse(t->secret, sizeof(t->secret));
	/* Plaintext was opened in place (and kTLS's is gathered in out):
	 * wipe as far as either was ever used, no further (pages an idle
	 * connection never touched stay untouched). */
	if (t->rx.buf != NULL) {
		OPENSSL_cleanse(t->rx.buf, t->rx.high);
		free(t->rx.buf);
	}
	if (t->out != NULL) {
		if (t->ktls)
			OPENSSL_cleanse(t->out, t->ohigh);
		free(t->out);
	}
	SSL_SESSION_free(t->client_psk);
	free(t->client_id);
	free(t);
}

/*
 * After the handshake: the records become ours, with the traffic secrets
 * the key log gave, unless OpenSSL hands them to the kernel (kTLS).  Read-
 * ahead is off and no ticket is sent, so everything after the handshake is
 * still in the socket and both sequence numbers are 0.  0, or -1.
 */
static int
records_start(struct tls_conn *t)
{
	int me = SSL_is_server(t->ssl) ? 1 : 0;
	uint16_t suite;

	if ((t->out = malloc(TLS_WBUF)) == NULL)
		return (-1);
	/* The kernel in one direction: OpenSSL does both (the socket would
	 * encrypt our records again). */
	if (BIO_get_ktls_send(SSL_get_wbio(t->ssl)) ||
	    BIO_get_ktls_recv(SSL_get_rbio(t->ssl))) {
		t->ktls = true;
		OPENSSL_cleanse(t->secret, sizeof(t->secret));
		return (0);
	}
	suite = SSL_CIPHER_get_protocol_id(SSL_get_current_cipher(t->ssl));
	if (t->secret_len[0] == 0 || t->secret_len[1] == 0 ||
	    SSL_pending(t->ssl) > 0 || SSL_has_pending(t->ssl) ||
	    (t->rx.buf = malloc(TLS_RBUF)) == NULL)
		return (-1);
	if (tls_rec_init(&t->tx, suite, t->secret[me], t->secret_len[me],
	    true) != 0)
		return (-1);
	if (tls_rec_init(&t->rxr, suite, t->secret[!me], t->secret_len[!me],
	    false) != 0) {
		tls_rec_free(&t->tx);
		return (-1);
	}
	OPENSSL_cleanse(t->secret, sizeof(t->secret));
	t->recs = true;
	SSL_free_buffers(t->ssl);	/* its record buffers go unused */
	return (0);
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
	rx->high = MAXIMUM(rx->high, rx->len);
	return (n);
}

/*
 * Is a whole record buffered?  A header announcing more than TLS 1.3
 * allows counts as whole, so that opening it fails rather than the buffer
 * waiting for bytes it has no room for.
 */
static bool
rx_record(const struct tls_rx *rx)
{
	size_t have = rx->len - rx->off, rlen;

	if (have < TLS_REC_HDR)
		return (false);
	rlen = tls_rec_wire(rx->buf + rx->off);
	return (have >= rlen || rlen > TLS_REC_WIRE);
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
		if (records_start(t) != 0) {
			snprintf(why, whylen, "TLS: cannot take over the "
			    "records (out of memory?)");
			return (-1);
		}
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
 * Is there something to read without the socket: opened bytes, or a
 * whole record?  A partial record is not: its rest comes with the socket.
 */
bool
tls_conn_rx_pending(struct tls_conn *t)
{
	if (t->recs)
		return (t->rx.pt_len > 0 || rx_record(&t->rx));
	return (SSL_pending(t->ssl) > 0 || SSL_has_pending(t->ssl)); /* kTLS */
}

bool
tls_conn_tx_pending(struct tls_conn *t)
{
	return (t->ooff < t->olen);
}

/* out to the socket: 0 when all of it went, else -1 with errno (EAGAIN:
 * the socket is full). */
static int
out_flush(struct tls_conn *t)
{
	ssize_t n;

	t->ohigh = MAXIMUM(t->ohigh, t->olen);
	while (t->ooff < t->olen) {
		if (t->ktls) {
			size_t w;
			int rc;

			ERR_clear_error();
			if ((rc = SSL_write_ex(t->ssl, t->out + t->ooff,
			    t->olen - t->ooff, &w)) <= 0) {
				errno = ssl_errno(t, rc);
				return (-1);
			}
			n = w;
		} else if ((n = send(t->fd, t->out + t->ooff, t->olen - t->ooff,
		    MSG_NOSIGNAL)) < 0) {
			if (errno == EINTR)
				continue;
			return (-1);
		}
		t->ooff += n;
	}
	t->ooff = t->olen = 0;
	return (0);
}

int
tls_conn_flush(struct tls_conn *t)
{
	return (out_flush(t));
}

/* errno for an SSL I/O failure (kTLS): EAGAIN to wait, else fatal. */
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

/* Under kTLS: OpenSSL reads the socket, the kernel opens the records. */
static ssize_t
ktls_readv(struct tls_conn *t, const struct iovec *iov, int cnt)
{
	size_t total = 0, n;
	int rc, e;

	for (int i = 0; i < cnt; i++) {
		uint8_t *p = iov[i].iov_base;
		size_t left = iov[i].iov_len;

		while (left > 0) {
			ERR_clear_error();
			if ((rc = SSL_read_ex(t->ssl, p, left, &n)) <= 0) {
				e = SSL_get_error(t->ssl, rc);
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
			/* Nothing opened left, the socket is likely empty
			 * too; the next readable event brings the rest. */
			if (left > 0 && !SSL_has_pending(t->ssl))
				return (total);
		}
	}
	return (total);
}

/*
 * A record that is not data: a KeyUpdate (answered when asked, RFC 8446
 * 4.6.3), a ticket (ignored: nvmfd resumes nothing), a closing alert.  The
 * record's content is at p.  0, 1 at the end of the stream, or -1.
 */
static int
records_control(struct tls_conn *t, uint8_t type, const uint8_t *p,
    size_t len)
{
	static const uint8_t key_update[5] = { 24, 0, 0, 1, 0 };
	struct iovec iov = { (void *)(uintptr_t)key_update, 5 };
	size_t mlen;
	ssize_t n;

	if (type == TLS_CT_ALERT) {
		if (len == 2 && p[1] == 0)	/* close_notify */
			return (1);
		log_peer_warnx("%s: TLS: alert %u from the peer", t->peer,
		    len == 2 ? p[1] : 0);
		return (-1);
	}
	if (type != TLS_CT_HANDSHAKE) {
		log_peer_warnx("%s: TLS: record of type %u", t->peer, type);
		return (-1);
	}
	/* Whole handshake messages only: they never span records here. */
	for (; len > 0; p += 4 + mlen, len -= 4 + mlen) {
		if (len < 4 || (mlen = (size_t)p[1] << 16 | p[2] << 8 | p[3]) >
		    len - 4)
			goto bad;
		if (p[0] == 4)		/* NewSessionTicket */
			continue;
		if (p[0] != 24 || mlen != 1 || p[4] > 1)
			goto bad;
		if (tls_rec_rekey(&t->rxr) != 0)
			return (-1);
		if (p[4] == 0)		/* update_not_requested */
			continue;
		/* Ours goes after what is queued, then our key moves. */
		if (t->olen + TLS_REC_SEALED(5) > TLS_WBUF &&
		    out_flush(t) != 0)
			return (-1);
		if ((n = tls_rec_seal(&t->tx, TLS_CT_HANDSHAKE, &iov, 1, 0, 5,
		    t->out + t->olen)) < 0 || tls_rec_rekey(&t->tx) != 0)
			return (-1);
		t->olen += n;
		/* Now if the socket takes it; else with the next data. */
		if (out_flush(t) != 0 && errno != EAGAIN)
			return (-1);
	}
	return (0);
 bad:
	log_peer_warnx("%s: TLS: unexpected handshake message %u after the "
	    "handshake", t->peer, len > 0 ? p[0] : 0);
	return (-1);
}

/*
 * Read plaintext into iov: what was opened in place, then whole records
 * from the buffer, refilled with one read(2) each time it holds no whole
 * record, until iov is full or a read comes back short (the socket is
 * drained: asking again would cost a system call to learn EAGAIN).  The
 * bytes read, 0 at the end of the stream, or -1 with errno (EAGAIN: no
 * whole record yet).
 */
ssize_t
tls_conn_readv(struct tls_conn *t, const struct iovec *iov, int cnt)
{
	struct tls_rx *rx = &t->rx;
	struct iovec part[TLS_OPEN_IOV];
	size_t room = 0, total = 0, inner, wlen, n;
	uint8_t *rec, type;
	ssize_t got;
	int i, np, rc, fail = 0;

	if (!t->recs)
		return (ktls_readv(t, iov, cnt));
	for (i = 0; i < cnt; i++)
		room += iov[i].iov_len;
	rx->drained = false;	/* a new readable event: ask the socket */
	while (total < room) {
		if (rx->pt_len > 0) {
			n = MINIMUM(rx->pt_len, room - total);
			np = iov_slice(iov, cnt, total, n, part, TLS_OPEN_IOV);
			for (i = 0; i < np; i++) {
				memcpy(part[i].iov_base, rx->buf + rx->pt_off,
				    part[i].iov_len);
				rx->pt_off += part[i].iov_len;
				rx->pt_len -= part[i].iov_len;
				total += part[i].iov_len;
			}
			continue;
		}
		if (!rx_record(rx)) {
			if (rx->drained || rx->eof)
				break;
			if (rx_fill(t) < 0 && errno != EAGAIN &&
			    errno != EWOULDBLOCK)
				return (total > 0 ? (ssize_t)total : -1);
			continue;
		}
		rec = rx->buf + rx->off;
		wlen = tls_rec_wire(rec);
		inner = tls_rec_inner(rec);
		/* Straight into the caller's buffers when the record fits. */
		np = 0;
		if (inner > 0 && inner <= room - total) {
			np = iov_slice(iov, cnt, total, inner, part,
			    TLS_OPEN_IOV);
			for (n = 0, i = 0; i < np; i++)
				n += part[i].iov_len;
			if (n != inner)
				np = 0;	/* too scattered: in place */
		}
		if ((got = tls_rec_open(&t->rxr, rec, np > 0 ? part : NULL, np,
		    &type)) < 0) {
			log_peer_warnx("%s: TLS: a record that does not open "
			    "(bad tag or length)", t->peer);
			errno = EBADMSG;
			return (total > 0 ? (ssize_t)total : -1);
		}
		rx->off += wlen;
		if (type == TLS_CT_APPDATA) {
			if (np > 0)
				total += got;
			else {
				rx->pt_off = rec + TLS_REC_HDR - rx->buf;
				rx->pt_len = got;
			}
			continue;
		}
		/* Not data: its content, contiguous, where it came from. */
		for (i = 0, n = 0; i < np; n += part[i++].iov_len)
			memcpy(rec + TLS_REC_HDR + n, part[i].iov_base,
			    part[i].iov_len);
		if ((rc = records_control(t, type, rec + TLS_REC_HDR,
		    got)) != 0) {
			if (rc > 0)
				rx->eof = true;
			else
				fail = EPROTO;
			break;
		}
	}
	if (total > 0)
		return (total);
	if (fail != 0) {
		errno = fail;
		return (-1);
	}
	if (rx->eof) {
		if (rx->off < rx->len)
			log_debug("%s: TLS: connection closed inside a record",
			    t->peer);
		return (0);
	}
	errno = EAGAIN;
	return (-1);
}

/* Under kTLS: plaintext gathered in out, for one SSL_write. */
static size_t
ktls_gather(struct tls_conn *t, const struct iovec *iov, int cnt,
    size_t skip, size_t len)
{
	size_t done = 0, l;

	for (int i = 0; i < cnt && done < len; i++) {
		if (skip >= iov[i].iov_len) {
			skip -= iov[i].iov_len;
			continue;
		}
		l = MINIMUM(iov[i].iov_len - skip, len - done);
		memcpy(t->out + t->olen + done,
		    (const uint8_t *)iov[i].iov_base + skip, l);
		done += l;
		skip = 0;
	}
	t->olen += done;
	return (done);
}

/*
 * Take bytes from iov and seal them into records of up to 16 KiB (many
 * small PDUs share one) in the buffer in front of the socket; returns how
 * many were taken (fewer than offered only when the socket is full), or
 * -1.  The records leave together at the end.
 */
ssize_t
tls_conn_sendv(struct tls_conn *t, const struct iovec *iov, int cnt)
{
	size_t all = 0, total = 0, len;
	ssize_t n;

	if (t->ooff < t->olen && out_flush(t) != 0)
		return (-1);
	for (int i = 0; i < cnt; i++)
		all += iov[i].iov_len;
	while (total < all) {
		len = MINIMUM(all - total, TLS_REC_MAX);
		if (t->olen + (t->ktls ? 1 : TLS_REC_SEALED(len)) > TLS_WBUF &&
		    out_flush(t) != 0)
			return (errno == EAGAIN && total > 0 ?
			    (ssize_t)total : -1);
		if (t->ktls) {
			total += ktls_gather(t, iov, cnt, total,
			    MINIMUM(all - total, TLS_WBUF - t->olen));
			continue;
		}
		if ((n = tls_rec_seal(&t->tx, TLS_CT_APPDATA, iov, cnt, total,
		    len, t->out + t->olen)) < 0) {
			errno = EPROTO;
			return (-1);
		}
		t->olen += n;
		total += len;
	}
	if (out_flush(t) != 0 && errno != EAGAIN)
		return (-1);
	return (total);
}
