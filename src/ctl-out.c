/*
 * Command output: handlers describe what they show as objects, lists of
 * objects and fields; this file renders that as aligned tables for people
 * or as JSON for scripts, so no handler formats either by hand.
 */
#include "config.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>

#include "nvmfd.h"

enum onode_type { ON_OBJECT, ON_LIST, ON_VALUE };

struct onode {
	enum onode_type	type;
	char		*key;
	char		*value;		/* ON_VALUE */
	bool		quoted;		/* a JSON string (not a number/bool) */
	struct onode	*parent;
	struct onode	*first, *last, *next;
};

struct out {
	struct onode	*root;
	struct onode	*cur;
	bool		oom;
};

static struct onode *
onode_add(struct out *o, enum onode_type type, const char *key)
{
	struct onode *n;

	if (o->oom || (n = calloc(1, sizeof(*n))) == NULL) {
		o->oom = true;
		return (NULL);
	}
	n->type = type;
	if (key && (n->key = strdup(key)) == NULL) {
		free(n);
		o->oom = true;
		return (NULL);
	}
	n->parent = o->cur;
	if (o->cur->last)
		o->cur->last->next = n;
	else
		o->cur->first = n;
	o->cur->last = n;
	return (n);
}

static void
onode_free(struct onode *n)
{
	while (n) {
		struct onode *next = n->next;

		onode_free(n->first);
		free(n->key);
		free(n->value);
		free(n);
		n = next;
	}
}

struct out *
out_new(void)
{
	struct out *o = calloc(1, sizeof(*o));

	if (o == NULL || (o->root = calloc(1, sizeof(*o->root))) == NULL) {
		free(o);
		return (NULL);
	}
	o->root->type = ON_OBJECT;
	o->cur = o->root;
	return (o);
}

void
out_free(struct out *o)
{
	if (o == NULL)
		return;
	onode_free(o->root);
	free(o);
}

/* An object: top-level (a single record), or a row inside a list. */
void
out_object(struct out *o, const char *key)
{
	struct onode *n = onode_add(o, ON_OBJECT, o->cur->type == ON_LIST ?
	    NULL : key);

	if (n)
		o->cur = n;
}

void
out_list(struct out *o, const char *key)
{
	struct onode *n = onode_add(o, ON_LIST, key);

	if (n)
		o->cur = n;
}

void
out_end(struct out *o)
{
	if (o->cur->parent)
		o->cur = o->cur->parent;
}

static void
out_value(struct out *o, const char *key, bool quoted, const char *fmt,
    va_list ap)
{
	struct onode *n = onode_add(o, ON_VALUE, key);

	if (n == NULL)
		return;
	n->quoted = quoted;
	if (vasprintf(&n->value, fmt, ap) < 0) {
		n->value = NULL;
		o->oom = true;
	}
}

void
out_str(struct out *o, const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	out_value(o, key, true, fmt, ap);
	va_end(ap);
}

static void
out_raw(struct out *o, const char *key, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	out_value(o, key, false, fmt, ap);
	va_end(ap);
}

void
out_u64(struct out *o, const char *key, uint64_t v)
{
	out_raw(o, key, "%llu", (unsigned long long)v);
}

void
out_double(struct out *o, const char *key, double v)
{
	out_raw(o, key, "%.3f", v);
}

void
out_bool(struct out *o, const char *key, bool v)
{
	out_raw(o, key, "%s", v ? "true" : "false");
}

/* ------------------------------------------------------------------ JSON */

static void
json_string(struct evbuffer *b, const char *s)
{
	evbuffer_add(b, "\"", 1);
	for (; *s; s++) {
		unsigned char c = *s;

		if (c == '"' || c == '\\')
			evbuffer_add_printf(b, "\\%c", c);
		else if (c < 0x20)
			evbuffer_add_printf(b, "\\u%04x", c);
		else
			evbuffer_add(b, s, 1);
	}
	evbuffer_add(b, "\"", 1);
}

static void
json_node(struct evbuffer *b, const struct onode *n, int depth)
{
	const struct onode *c;
	bool first = true;

	switch (n->type) {
	case ON_VALUE:
		if (n->quoted)
			json_string(b, n->value ? n->value : "");
		else
			evbuffer_add_printf(b, "%s", n->value ? n->value : "null");
		return;
	case ON_OBJECT:
	case ON_LIST:
		evbuffer_add(b, n->type == ON_OBJECT ? "{" : "[", 1);
		for (c = n->first; c; c = c->next) {
			evbuffer_add_printf(b, "%s\n%*s", first ? "" : ",",
			    2 * (depth + 1), "");
			first = false;
			if (n->type == ON_OBJECT && c->key) {
				json_string(b, c->key);
				evbuffer_add(b, ": ", 2);
			}
			json_node(b, c, depth + 1);
		}
		if (!first)
			evbuffer_add_printf(b, "\n%*s", 2 * depth, "");
		evbuffer_add(b, n->type == ON_OBJECT ? "}" : "]", 1);
		return;
	}
}

/* ---------------------------------------------------------------- tables */

#define MAX_COLS	32

/* A list of objects: one column per scalar key, in order of appearance. */
static void
table_list(struct evbuffer *b, const struct onode *list, int indent)
{
	const char *cols[MAX_COLS];
	size_t width[MAX_COLS];
	int ncols = 0;
	const struct onode *row, *f;

	for (row = list->first; row; row = row->next)
		for (f = row->first; f; f = f->next) {
			int i;

			if (f->type != ON_VALUE || f->key == NULL)
				continue;
			for (i = 0; i < ncols && strcmp(cols[i], f->key); i++)
				;
			if (i == ncols && ncols < MAX_COLS) {
				cols[ncols] = f->key;
				width[ncols++] = strlen(f->key);
			}
			if (i < ncols && f->value && strlen(f->value) > width[i])
				width[i] = strlen(f->value);
		}
	if (list->first == NULL) {
		evbuffer_add_printf(b, "%*s(none)\n", indent, "");
		return;
	}
	evbuffer_add_printf(b, "%*s", indent, "");
	for (int i = 0; i < ncols; i++) {
		char up[64];
		size_t k;

		for (k = 0; cols[i][k] && k < sizeof(up) - 1; k++)
			up[k] = cols[i][k] == '_' ? ' ' :
			    (cols[i][k] >= 'a' && cols[i][k] <= 'z' ?
			    cols[i][k] - 32 : cols[i][k]);
		up[k] = '\0';
		evbuffer_add_printf(b, "%-*s%s", i + 1 < ncols ? (int)width[i] : 0,
		    up, i + 1 < ncols ? "  " : "\n");
	}
	for (row = list->first; row; row = row->next) {
		evbuffer_add_printf(b, "%*s", indent, "");
		for (int i = 0; i < ncols; i++) {
			const char *v = "-";

			for (f = row->first; f; f = f->next)
				if (f->type == ON_VALUE && f->key &&
				    strcmp(f->key, cols[i]) == 0)
					v = f->value ? f->value : "-";
			evbuffer_add_printf(b, "%-*s%s", i + 1 < ncols ?
			    (int)width[i] : 0, v, i + 1 < ncols ? "  " : "\n");
		}
	}
}

/* An object: "key: value" lines, then its lists as indented tables. */
static void
table_object(struct evbuffer *b, const struct onode *obj, int indent)
{
	const struct onode *f;
	size_t w = 0;

	for (f = obj->first; f; f = f->next)
		if (f->type == ON_VALUE && f->key && strlen(f->key) > w)
			w = strlen(f->key);
	for (f = obj->first; f; f = f->next)
		if (f->type == ON_VALUE)
			evbuffer_add_printf(b, "%*s%-*s  %s\n", indent, "",
			    (int)w + 1, f->key ? f->key : "", f->value ?
			    f->value : "-");
	for (f = obj->first; f; f = f->next) {
		if (f->type == ON_LIST) {
			if (f->key && obj->parent != NULL)
				evbuffer_add_printf(b, "%*s%s:\n", indent, "",
				    f->key);
			else if (f->key && obj->first != f)
				evbuffer_add_printf(b, "\n%*s%s:\n", indent, "",
				    f->key);
			table_list(b, f, indent + (obj->parent ? 2 : 0) +
			    (f->key && obj->first != f && !obj->parent ? 2 : 0));
		} else if (f->type == ON_OBJECT) {
			if (f->key)
				evbuffer_add_printf(b, "%*s%s:\n", indent, "",
				    f->key);
			table_object(b, f, indent + 2);
		}
	}
}

/* Render everything described so far; returns -1 if memory ran out. */
int
out_render(struct out *o, struct evbuffer *b, bool json)
{
	if (o->oom)
		return (-1);
	if (o->root->first == NULL)
		return (0);
	if (json) {
		json_node(b, o->root, 0);
		evbuffer_add(b, "\n", 1);
	} else
		table_object(b, o->root, 0);
	return (0);
}
