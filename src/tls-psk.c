/*
 * NVMe/TCP TLS pre-shared keys (NVMe/TCP transport spec section 3.6.1.3,
 * as libnvme and the Linux kernel implement it): the interchange format,
 * the retained PSK, the PSK identities and the TLS PSK.  Pure functions on
 * bytes, for either role; key material is wiped before it goes out of
 * scope.
 */
#include "config.h"

#include <stdio.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "nvmfd.h"
#include "auth.h"
#include "tls.h"

#define KEY_PREFIX	"NVMeTLSkey-1:"

static const EVP_MD *
hash_md(int hash)
{
	return (hash == 2 ? EVP_sha384() : hash == 1 ? EVP_sha256() : NULL);
}

int
tls_key_parse(const char *s, struct tls_key *k, const char **why)
{
	uint8_t raw[TLS_PSK_MAX + 4 + 3];
	const char *b64, *end;
	size_t rawlen = 0, plen = strlen(KEY_PREFIX);
	uint32_t crc;
	int n;

	memset(k, 0, sizeof(*k));
	*why = NULL;
	if (strncmp(s, KEY_PREFIX, plen) != 0) {
		*why = "is not a TLS PSK in interchange format "
		    "(NVMeTLSkey-1:XX:<base64>:)";
		return (-1);
	}
	s += plen;
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' ||
	    s[2] != ':') {
		*why = "has no two-digit hash indicator";
		return (-1);
	}
	k->hmac = (s[0] - '0') * 10 + (s[1] - '0');
	if (k->hmac > 2) {
		*why = "names an unknown hash (00, 01 or 02 expected)";
		return (-1);
	}
	b64 = s + 3;
	if ((end = strchr(b64, ':')) == NULL || end[1] != '\0') {
		*why = "does not end with ':'";
		return (-1);
	}
	n = key_b64_decode(b64, end - b64, raw, sizeof(raw));
	rawlen = n < 0 ? 0 : (size_t)n;
	if (rawlen != 32 + 4 && rawlen != 48 + 4) {
		OPENSSL_cleanse(raw, sizeof(raw));
		*why = "is not base64 of a 32 or 48 byte key and its CRC-32";
		return (-1);
	}
	k->len = rawlen - 4;
	crc = raw[k->len] | raw[k->len + 1] << 8 | raw[k->len + 2] << 16 |
	    (uint32_t)raw[k->len + 3] << 24;
	if (crc != dhchap_crc32(raw, k->len)) {	/* DHHC-1's CRC too */
		OPENSSL_cleanse(raw, sizeof(raw));
		k->len = 0;
		*why = "fails its CRC-32 check";
		return (-1);
	}
	if ((k->hmac == 1 && k->len != 32) || (k->hmac == 2 && k->len != 48)) {
		OPENSSL_cleanse(raw, sizeof(raw));
		k->len = 0;
		*why = "has a key length that does not match its hash";
		return (-1);
	}
	memcpy(k->key, raw, k->len);
	OPENSSL_cleanse(raw, sizeof(raw));
	return (0);
}

int
tls_key_hash(const struct tls_key *k)
{
	if (k->hmac != 0)
		return (k->hmac);
	return (k->len == 48 ? 2 : 1);
}

/* HKDF (RFC 5869) with an all-zero salt of the hash's length. */
static int
hkdf(int hash, const uint8_t *ikm, size_t ikmlen, const uint8_t *info,
    size_t infolen, uint8_t *out, size_t len)
{
	const EVP_MD *md = hash_md(hash);
	uint8_t salt[EVP_MAX_MD_SIZE] = { 0 }, prk[EVP_MAX_MD_SIZE];
	uint8_t t[EVP_MAX_MD_SIZE], in[EVP_MAX_MD_SIZE + 1024 + 1];
	unsigned int prklen, tlen = 0, hlen;
	size_t done = 0;
	int rc = -1;

	if (md == NULL || infolen > 1024)
		return (-1);
	hlen = EVP_MD_get_size(md);
	if (len > 255 * hlen ||
	    HMAC(md, salt, hlen, ikm, ikmlen, prk, &prklen) == NULL)
		goto out;
	for (uint8_t i = 1; done < len; i++) {
		size_t n = 0;

		memcpy(in, t, tlen);
		n += tlen;
		memcpy(in + n, info, infolen);
		n += infolen;
		in[n++] = i;
		if (HMAC(md, prk, prklen, in, n, t, &tlen) == NULL)
			goto out;
		memcpy(out + done, t, MINIMUM(len - done, tlen));
		done += MINIMUM(len - done, tlen);
	}
	rc = 0;
 out:
	OPENSSL_cleanse(prk, sizeof(prk));
	OPENSSL_cleanse(t, sizeof(t));
	OPENSSL_cleanse(in, sizeof(in));
	return (rc);
}

/*
 * The HKDF info for label and context in either layout; -1 when it does
 * not fit (RFC 8446 limits the context to 255 bytes).
 */
static int
kdf_info(enum tls_kdf kdf, size_t outlen, const char *label,
    const uint8_t *ctx, size_t ctxlen, uint8_t *info, size_t infosz,
    size_t *infolen)
{
	size_t lablen = strlen("tls13 ") + strlen(label), n = 0;

	if (4 + lablen + ctxlen > infosz ||
	    (kdf == TLS_KDF_RFC8446 && (ctxlen > 255 || lablen > 255)))
		return (-1);
	if (kdf == TLS_KDF_RFC8446) {
		info[n++] = outlen >> 8;
		info[n++] = outlen;
		info[n++] = lablen;
	} else {
		info[n++] = outlen;
		info[n++] = outlen >> 8;
	}
	memcpy(info + n, "tls13 ", 6);
	memcpy(info + n + 6, label, lablen - 6);
	n += lablen;
	if (kdf == TLS_KDF_RFC8446)
		info[n++] = ctxlen;
	memcpy(info + n, ctx, ctxlen);
	*infolen = n + ctxlen;
	return (0);
}

int
tls_retained_psk(const struct tls_key *k, const char *hostnqn,
    enum tls_kdf kdf, uint8_t *out)
{
	uint8_t info[512];
	size_t infolen;

	if (k->hmac == 0) {
		memcpy(out, k->key, k->len);
		return (0);
	}
	if (kdf_info(kdf, k->len, "HostNQN", (const uint8_t *)hostnqn,
	    strlen(hostnqn), info, sizeof(info), &infolen) != 0)
		return (-1);
	return (hkdf(k->hmac, k->key, k->len, info, infolen, out, k->len));
}

int
tls_psk_digest(int hash, const uint8_t *retained, size_t len,
    const char *hostnqn, const char *subnqn, char *out, size_t outsz)
{
	const EVP_MD *md = hash_md(hash);
	uint8_t mac[EVP_MAX_MD_SIZE];
	char msg[2 * 224 + 32];
	unsigned int maclen;
	int n;

	n = snprintf(msg, sizeof(msg), "%s %s NVMe-over-Fabrics", hostnqn,
	    subnqn);
	if (md == NULL || n < 0 || (size_t)n >= sizeof(msg) ||
	    HMAC(md, retained, len, (uint8_t *)msg, n, mac, &maclen) == NULL)
		return (-1);
	if (outsz < 4 * ((maclen + 2) / 3) + 1)
		return (-1);
	EVP_EncodeBlock((unsigned char *)out, mac, maclen);
	return (0);
}

int
tls_identity_build(int version, int hash, const uint8_t *retained,
    size_t len, const char *hostnqn, const char *subnqn, char *out,
    size_t outsz)
{
	char digest[65];
	int n;

	if (version == 0)
		n = snprintf(out, outsz, "NVMe0R%02d %s %s", hash, hostnqn,
		    subnqn);
	else if (version == 1 && tls_psk_digest(hash, retained, len, hostnqn,
	    subnqn, digest, sizeof(digest)) == 0)
		n = snprintf(out, outsz, "NVMe1R%02d %s %s %s", hash, hostnqn,
		    subnqn, digest);
	else
		return (-1);
	return (n < 0 || (size_t)n >= outsz ? -1 : 0);
}

/* One space-free field of at most max characters; advances *p. */
static int
id_field(const uint8_t **p, const uint8_t *end, char *out, size_t max)
{
	size_t n = 0;

	while (*p < end && **p != ' ') {
		if (**p <= 0x20 || **p >= 0x7f || n == max)
			return (-1);
		out[n++] = *(*p)++;
	}
	out[n] = '\0';
	return (n > 0 ? 0 : -1);
}

int
tls_identity_parse(const uint8_t *id, size_t len, struct tls_identity *ti)
{
	const uint8_t *p = id + 9, *end = id + len;

	memset(ti, 0, sizeof(*ti));
	if (len < 9 + 3 || len > TLS_IDENTITY_MAX ||
	    memcmp(id, "NVMe", 4) != 0 || (id[4] != '0' && id[4] != '1') ||
	    (id[5] != 'R' && id[5] != 'G') || id[6] != '0' ||
	    (id[7] != '1' && id[7] != '2') || id[8] != ' ')
		return (-1);
	ti->version = id[4] - '0';
	ti->type = id[5];
	ti->hash = id[7] - '0';
	if (id_field(&p, end, ti->hostnqn, sizeof(ti->hostnqn) - 1) != 0 ||
	    p == end || *p++ != ' ' ||
	    id_field(&p, end, ti->subnqn, sizeof(ti->subnqn) - 1) != 0)
		return (-1);
	if (ti->version == 0)
		return (p == end ? 0 : -1);
	if (p == end || *p++ != ' ' ||
	    id_field(&p, end, ti->digest, sizeof(ti->digest) - 1) != 0 ||
	    p != end)
		return (-1);
	return (strlen(ti->digest) == (ti->hash == 1 ? 44u : 64u) ? 0 : -1);
}

int
tls_psk_derive(const uint8_t *retained, size_t len,
    const struct tls_identity *ti, const char *identity, enum tls_kdf kdf,
    uint8_t *out, size_t *outlen)
{
	const EVP_MD *md = hash_md(ti->hash);
	uint8_t info[1024], ctx[80];
	const uint8_t *c;
	size_t infolen, clen, olen;

	if (md == NULL)
		return (-1);
	if (ti->version == 0) {
		c = (const uint8_t *)identity;
		clen = strlen(identity);
	} else {
		int n = snprintf((char *)ctx, sizeof(ctx), "%02d %s", ti->hash,
		    ti->digest);

		if (n < 0 || (size_t)n >= sizeof(ctx))
			return (-1);
		c = ctx;
		clen = n;
	}
	/* The compat layout makes a TLS PSK as long as the retained one. */
	olen = kdf == TLS_KDF_COMPAT ? len : (size_t)EVP_MD_get_size(md);
	if (olen > TLS_PSK_MAX || kdf_info(kdf, olen, "nvme-tls-psk", c, clen,
	    info, sizeof(info), &infolen) != 0)
		return (-1);
	if (hkdf(ti->hash, retained, len, info, infolen, out, olen) != 0)
		return (-1);
	*outlen = olen;
	return (0);
}

int
tls_psk_for_identity(const struct tls_key *k, const struct tls_identity *ti,
    const char *identity, enum tls_kdf kdf, uint8_t *out, size_t *outlen)
{
	uint8_t retained[TLS_PSK_MAX];
	int rc = -1;

	/* The identity's hash picks the cipher suite: it must be the key's. */
	if (ti->type != 'R' || ti->hash != tls_key_hash(k))
		return (-1);
	if (tls_retained_psk(k, ti->hostnqn, kdf, retained) != 0)
		goto out;
	if (ti->version == 1) {
		char digest[65];

		if (tls_psk_digest(ti->hash, retained, k->len, ti->hostnqn,
		    ti->subnqn, digest, sizeof(digest)) != 0 ||
		    CRYPTO_memcmp(digest, ti->digest, strlen(digest) + 1) != 0)
			goto out;
	}
	rc = tls_psk_derive(retained, k->len, ti, identity, kdf, out, outlen);
 out:
	OPENSSL_cleanse(retained, sizeof(retained));
	return (rc);
}
