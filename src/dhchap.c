/*
 * DH-HMAC-CHAP crypto (NVMe Base 2.x section 8.3.4.5): the secret
 * representation, key transformation, augmented challenge, responses and
 * finite-field Diffie-Hellman, with OpenSSL 3.  No protocol state here: the
 * controller (auth.c) and a future host role share it.
 */
#include "config.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/dh.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/param_build.h>

#include "auth.h"

#define DHHC_PREFIX	"DHHC-1:"
#define XFORM_LABEL	"NVMe-over-Fabrics"

static const struct {
	const char	*name;
	const char	*md;
	size_t		len;
} hashes[] = {
	[DHCHAP_SHA256] = { "sha256", "SHA256", 32 },
	[DHCHAP_SHA384] = { "sha384", "SHA384", 48 },
	[DHCHAP_SHA512] = { "sha512", "SHA512", 64 },
};

static const struct {
	const char	*name;
	size_t		size;
} groups[] = {
	{ "null", 0 }, { "ffdhe2048", 256 }, { "ffdhe3072", 384 },
	{ "ffdhe4096", 512 }, { "ffdhe6144", 768 }, { "ffdhe8192", 1024 },
};

size_t
dhchap_hash_len(uint8_t id)
{
	return (id >= DHCHAP_SHA256 && id <= DHCHAP_SHA512 ? hashes[id].len : 0);
}

const char *
dhchap_hash_name(uint8_t id)
{
	return (dhchap_hash_len(id) ? hashes[id].name : "unknown");
}

int
dhchap_hash_id(const char *name)
{
	for (int i = DHCHAP_SHA256; i <= DHCHAP_SHA512; i++)
		if (strcmp(name, hashes[i].name) == 0)
			return (i);
	return (-1);
}

static const EVP_MD *
hash_md(uint8_t id)
{
	return (dhchap_hash_len(id) ? EVP_get_digestbyname(hashes[id].md) :
	    NULL);
}

size_t
dhchap_group_size(uint8_t id)
{
	return (id < DHCHAP_NGROUPS ? groups[id].size : 0);
}

const char *
dhchap_group_name(uint8_t id)
{
	return (id < DHCHAP_NGROUPS ? groups[id].name : "unknown");
}

int
dhchap_group_id(const char *name)
{
	for (int i = 0; i < DHCHAP_NGROUPS; i++)
		if (strcmp(name, groups[i].name) == 0)
			return (i);
	return (-1);
}

bool
dhchap_equal(const void *a, const void *b, size_t n)
{
	return (CRYPTO_memcmp(a, b, n) == 0);
}

/* ---------------------------------------------------- secret format */

/* IEEE 802.3 CRC-32 as zlib computes it; secrets are short. */
uint32_t
dhchap_crc32(const uint8_t *p, size_t n)
{
	uint32_t crc = 0xffffffff;

	while (n--) {
		crc ^= *p++;
		for (int k = 0; k < 8; k++)
			crc = (crc >> 1) ^ (0xedb88320 & -(crc & 1));
	}
	return (~crc);
}

static int
b64val(char c)
{
	if (c >= 'A' && c <= 'Z')
		return (c - 'A');
	if (c >= 'a' && c <= 'z')
		return (c - 'a' + 26);
	if (c >= '0' && c <= '9')
		return (c - '0' + 52);
	if (c == '+')
		return (62);
	if (c == '/')
		return (63);
	return (-1);
}

/* Strict standard base64 with padding; returns bytes or -1. */
int
key_b64_decode(const char *s, size_t n, uint8_t *out, size_t max)
{
	size_t o = 0;

	if (n == 0 || n % 4 != 0)
		return (-1);
	for (size_t i = 0; i < n; i += 4) {
		int v[4], pad = 0;
		uint32_t w;

		for (int k = 0; k < 4; k++) {
			if (s[i + k] == '=' && i + 4 == n && k >= 2) {
				v[k] = 0;
				pad++;
				continue;
			}
			if (pad || (v[k] = b64val(s[i + k])) < 0)
				return (-1);
		}
		w = v[0] << 18 | v[1] << 12 | v[2] << 6 | v[3];
		if (o + 3 - pad > max)
			return (-1);
		out[o++] = w >> 16;
		if (pad < 2)
			out[o++] = w >> 8;
		if (pad < 1)
			out[o++] = w;
	}
	return ((int)o);
}

static void
b64_encode(const uint8_t *p, size_t n, char *out)
{
	static const char a[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

	for (size_t i = 0; i < n; i += 3) {
		uint32_t w = p[i] << 16 | (i + 1 < n ? p[i + 1] << 8 : 0) |
		    (i + 2 < n ? p[i + 2] : 0);

		*out++ = a[w >> 18 & 63];
		*out++ = a[w >> 12 & 63];
		*out++ = i + 1 < n ? a[w >> 6 & 63] : '=';
		*out++ = i + 2 < n ? a[w & 63] : '=';
	}
	*out = '\0';
}

int
dhchap_key_parse(const char *s, struct dhchap_key *key, char *err,
    size_t errlen)
{
	uint8_t raw[DHCHAP_KEY_MAX + 4];
	const char *b, *end;
	uint32_t crc;
	int n, x;

	memset(key, 0, sizeof(*key));
	if (strncmp(s, DHHC_PREFIX, strlen(DHHC_PREFIX)) != 0) {
		snprintf(err, errlen, "not a DH-HMAC-CHAP secret "
		    "(expected DHHC-1:XX:<base64>:)");
		return (-1);
	}
	s += strlen(DHHC_PREFIX);
	if (s[0] < '0' || s[0] > '9' || s[1] < '0' || s[1] > '9' ||
	    s[2] != ':') {
		snprintf(err, errlen, "the transformation hash must be two "
		    "digits (00 to 03)");
		return (-1);
	}
	x = (s[0] - '0') * 10 + (s[1] - '0');
	if (x > DHCHAP_SHA512) {
		snprintf(err, errlen, "unknown transformation hash %02d "
		    "(00 none, 01 SHA-256, 02 SHA-384, 03 SHA-512)", x);
		return (-1);
	}
	b = s + 3;
	if ((end = strchr(b, ':')) == NULL || end[1] != '\0') {
		snprintf(err, errlen, "the secret must end with ':'");
		return (-1);
	}
	n = key_b64_decode(b, end - b, raw, sizeof(raw));
	if (n < 0 || (n != 36 && n != 52 && n != 68)) {
		OPENSSL_cleanse(raw, sizeof(raw));
		if (n < 0)
			snprintf(err, errlen, "the secret is not valid base64 "
			    "of 36, 52 or 68 bytes");
		else
			snprintf(err, errlen, "the secret is %d bytes; it "
			    "must be 32, 48 or 64 (plus a CRC-32)", n - 4);
		return (-1);
	}
	n -= 4;
	crc = raw[n] | raw[n + 1] << 8 | raw[n + 2] << 16 |
	    (uint32_t)raw[n + 3] << 24;
	if (crc != dhchap_crc32(raw, n)) {
		OPENSSL_cleanse(raw, sizeof(raw));
		snprintf(err, errlen, "the secret's CRC-32 does not match "
		    "(mistyped or truncated)");
		return (-1);
	}
	memcpy(key->data, raw, n);
	key->len = n;
	key->xform = x;
	OPENSSL_cleanse(raw, sizeof(raw));
	return (0);
}

int
dhchap_key_format(const struct dhchap_key *key, char *buf, size_t len)
{
	uint8_t raw[DHCHAP_KEY_MAX + 4];
	uint32_t crc;
	size_t need;

	if (key->len == 0 || key->len > DHCHAP_KEY_MAX)
		return (-1);
	need = strlen(DHHC_PREFIX) + 3 + (key->len + 4 + 2) / 3 * 4 + 2;
	if (len < need)
		return (-1);
	memcpy(raw, key->data, key->len);
	crc = dhchap_crc32(key->data, key->len);
	for (int i = 0; i < 4; i++)
		raw[key->len + i] = crc >> (8 * i);
	snprintf(buf, len, DHHC_PREFIX "%02u:", key->xform);
	b64_encode(raw, key->len + 4, buf + strlen(buf));
	strcat(buf, ":");
	OPENSSL_cleanse(raw, sizeof(raw));
	return (0);
}

void
dhchap_key_clear(struct dhchap_key *key)
{
	OPENSSL_cleanse(key, sizeof(*key));
}

/* ---------------------------------------------------------- HMACs */

int
dhchap_transform(const struct dhchap_key *key, const char *nqn, uint8_t *out,
    size_t *outlen)
{
	uint8_t msg[256 + sizeof(XFORM_LABEL)];
	size_t nl = strlen(nqn), ll = strlen(XFORM_LABEL);
	unsigned int olen;
	const EVP_MD *md;

	if (key->xform == 0) {
		memcpy(out, key->data, key->len);
		*outlen = key->len;
		return (0);
	}
	if ((md = hash_md(key->xform)) == NULL || nl > 255)
		return (-1);
	memcpy(msg, nqn, nl);
	memcpy(msg + nl, XFORM_LABEL, ll);
	if (HMAC(md, key->data, key->len, msg, nl + ll, out, &olen) == NULL)
		return (-1);
	*outlen = olen;
	return (0);
}

int
dhchap_augment(uint8_t id, const uint8_t *z, size_t zlen, const uint8_t *c,
    uint8_t *out)
{
	uint8_t hz[DHCHAP_HL_MAX];
	size_t hl = dhchap_hash_len(id);
	unsigned int olen;
	int rc = -1;

	if (hl == 0 || EVP_Digest(z, zlen, hz, &olen, hash_md(id), NULL) != 1)
		return (-1);
	if (HMAC(hash_md(id), hz, hl, c, hl, out, &olen) != NULL)
		rc = 0;
	OPENSSL_cleanse(hz, sizeof(hz));
	return (rc);
}

int
dhchap_response(uint8_t id, const uint8_t *k, size_t klen, const uint8_t *c,
    uint32_t seq, uint16_t tid, uint8_t sc_c, const char *role,
    const char *nqn1, const char *nqn2, uint8_t *out)
{
	uint8_t msg[DHCHAP_HL_MAX + 7 + 16 + 2 * 256 + 1];
	size_t hl = dhchap_hash_len(id), n = 0;
	size_t rl = strlen(role), l1 = strlen(nqn1), l2 = strlen(nqn2);
	unsigned int olen;

	if (hl == 0 || rl > 16 || l1 > 255 || l2 > 255)
		return (-1);
	memcpy(msg, c, hl);
	n = hl;
	for (int i = 0; i < 4; i++)
		msg[n++] = seq >> (8 * i);
	msg[n++] = tid;
	msg[n++] = tid >> 8;
	msg[n++] = sc_c;
	memcpy(msg + n, role, rl);
	n += rl;
	memcpy(msg + n, nqn1, l1);
	n += l1;
	msg[n++] = 0;
	memcpy(msg + n, nqn2, l2);
	n += l2;
	return (HMAC(hash_md(id), k, klen, msg, n, out, &olen) != NULL ? 0 : -1);
}

/* ------------------------------------------------ Diffie-Hellman */

struct dhchap_dh {
	uint8_t		group;
	EVP_PKEY	*pkey;
};

struct dhchap_dh *
dhchap_dh_new(uint8_t id)
{
	struct dhchap_dh *dh;
	EVP_PKEY_CTX *ctx;
	OSSL_PARAM params[2];

	if (dhchap_group_size(id) == 0 || (dh = calloc(1, sizeof(*dh))) == NULL)
		return (NULL);
	dh->group = id;
	params[0] = OSSL_PARAM_construct_utf8_string(OSSL_PKEY_PARAM_GROUP_NAME,
	    (char *)groups[id].name, 0);
	params[1] = OSSL_PARAM_construct_end();
	if ((ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL)) == NULL ||
	    EVP_PKEY_keygen_init(ctx) != 1 ||
	    EVP_PKEY_CTX_set_params(ctx, params) != 1 ||
	    EVP_PKEY_generate(ctx, &dh->pkey) != 1) {
		EVP_PKEY_CTX_free(ctx);
		free(dh);
		return (NULL);
	}
	EVP_PKEY_CTX_free(ctx);
	return (dh);
}

/* The public value, big-endian, left-padded to the group size. */
int
dhchap_dh_public(struct dhchap_dh *dh, uint8_t *out, size_t len)
{
	BIGNUM *pub = NULL;
	int rc = -1;

	if (len != dhchap_group_size(dh->group))
		return (-1);
	if (EVP_PKEY_get_bn_param(dh->pkey, OSSL_PKEY_PARAM_PUB_KEY, &pub) == 1 &&
	    BN_bn2binpad(pub, out, len) == (int)len)
		rc = 0;
	BN_free(pub);
	return (rc);
}

static EVP_PKEY *
dh_peer(uint8_t id, const uint8_t *v, size_t len)
{
	OSSL_PARAM_BLD *bld = NULL;
	OSSL_PARAM *params = NULL;
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *peer = NULL;
	BIGNUM *pub;

	if ((pub = BN_bin2bn(v, len, NULL)) == NULL)
		return (NULL);
	if ((bld = OSSL_PARAM_BLD_new()) == NULL ||
	    OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME,
	    groups[id].name, 0) != 1 ||
	    OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_PUB_KEY, pub) != 1 ||
	    (params = OSSL_PARAM_BLD_to_param(bld)) == NULL ||
	    (ctx = EVP_PKEY_CTX_new_from_name(NULL, "DH", NULL)) == NULL ||
	    EVP_PKEY_fromdata_init(ctx) != 1 ||
	    EVP_PKEY_fromdata(ctx, &peer, EVP_PKEY_PUBLIC_KEY, params) != 1)
		peer = NULL;
	EVP_PKEY_CTX_free(ctx);
	OSSL_PARAM_free(params);
	OSSL_PARAM_BLD_free(bld);
	BN_free(pub);
	return (peer);
}

/*
 * Z = peer^x mod p, left-padded to the group size.  The peer's value must
 * be exactly the group size and pass OpenSSL's public key check (range
 * 2..p-2 and the subgroup), or -1.
 */
int
dhchap_dh_derive(struct dhchap_dh *dh, const uint8_t *peer, size_t plen,
    uint8_t *z, size_t zlen)
{
	size_t gs = dhchap_group_size(dh->group);
	EVP_PKEY_CTX *ctx = NULL;
	EVP_PKEY *pk;
	size_t n = zlen;
	int rc = -1;

	if (plen != gs || zlen != gs)
		return (-1);
	if ((pk = dh_peer(dh->group, peer, plen)) == NULL)
		return (-1);
	if ((ctx = EVP_PKEY_CTX_new_from_pkey(NULL, dh->pkey, NULL)) != NULL &&
	    EVP_PKEY_derive_init(ctx) == 1 &&
	    EVP_PKEY_CTX_set_dh_pad(ctx, 1) == 1 &&
	    EVP_PKEY_derive_set_peer_ex(ctx, pk, 1) == 1 &&
	    EVP_PKEY_derive(ctx, z, &n) == 1 && n == gs)
		rc = 0;
	if (rc != 0)
		OPENSSL_cleanse(z, zlen);
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return (rc);
}

void
dhchap_dh_free(struct dhchap_dh *dh)
{
	if (dh == NULL)
		return;
	EVP_PKEY_free(dh->pkey);	/* clears the private key */
	free(dh);
}
