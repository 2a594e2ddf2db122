/*
 * Discovery log page (LID 0x70): the current discovery subsystem, then one
 * entry per subsystem and port the connected host may use, then referrals.
 * Built from the running configuration for each discovery controller and
 * kept until GENCTR changes (logpage.c); GENCTR changes with every change so
 * hosts reading it in chunks can detect one.
 */
#include "config.h"

#include <sys/socket.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "nvmfd.h"

uint64_t discovery_genctr = 1;

static bool
is_wildcard(const char *addr)
{
	return (strcmp(addr, "0.0.0.0") == 0 || strcmp(addr, "::") == 0);
}

static void
fill_entry(struct nvmf_disc_log_entry *e, uint8_t subtype, const char *nqn,
    int family, const char *addr, const char *service, uint16_t portid,
    enum port_tls tls)
{
	memset(e, 0, sizeof(*e));
	e->trtype = NVMF_TRTYPE_TCP;
	e->adrfam = family == AF_INET6 ? NVMF_ADRFAM_IPV6 : NVMF_ADRFAM_IPV4;
	e->subtype = subtype;
	e->treq = NVMF_TREQ_DISABLE_SQFLOW | (tls == PORT_TLS_REQUIRED ?
	    NVMF_TREQ_REQUIRED : tls == PORT_TLS_OPTIONAL ?
	    NVMF_TREQ_NOT_REQUIRED : NVMF_TREQ_NOT_SPECIFIED);
	e->portid = portid;
	e->cntlid = NVMF_CNTLID_DYNAMIC;
	e->asqsz = NVMFD_ADMIN_QUEUE_DEPTH;
	if (subtype == NVMF_SUBTYPE_CURRENT_DISC)
		e->eflags = NVMF_DISC_EFLAGS_DUPRETINFO | NVMF_DISC_EFLAGS_EPCSD;
	put_padded(e->trsvcid, sizeof(e->trsvcid), service);
	snprintf(e->subnqn, sizeof(e->subnqn), "%s", nqn);
	put_padded(e->traddr, sizeof(e->traddr), addr);
	/* SECTYPE: none, or TLS 1.3 */
	e->tsas[0] = tls == PORT_TLS_OFF ? NVMF_TCP_SECTYPE_NONE :
	    NVMF_TCP_SECTYPE_TLS13;
}

/* The address to advertise for a port: a wildcard becomes the address the
 * host reached us on. */
static const char *
port_address(struct port *port, struct controller *ctrl)
{
	const char *local = ctrl->admin ? ctrl->admin->local_addr : "";
	bool local6 = strchr(local, ':') != NULL;

	/* Only an address of the port's own family can stand in for it. */
	if (is_wildcard(port->address) && local[0] != '\0' &&
	    local6 == (port->family == AF_INET6))
		return (local);
	return (port->address);
}

size_t
discovery_log_build(struct controller *ctrl, uint8_t **out)
{
	struct config *cf = running_config;
	struct nvmf_disc_log_hdr *hdr;
	struct nvmf_disc_log_entry *e;
	struct subsystem *ss;
	struct port *port;
	struct referral *ref;
	size_t n = 1, size;
	/* Only what this host may connect to, from where it is. */
	const struct sockaddr *peer = ctrl->admin ?
	    (struct sockaddr *)&ctrl->admin->peer_sa : NULL;

	TAILQ_FOREACH(ss, &cf->subsystems, entry)
		TAILQ_FOREACH(port, &cf->ports, entry)
			if (subsystem_on_port(ss, port) &&
			    subsystem_host_allowed(ss, ctrl->hostnqn, peer))
				n++;
	TAILQ_FOREACH(ref, &cf->referrals, entry)
		n++;
	size = sizeof(*hdr) + n * sizeof(*e);
	if ((*out = calloc(1, size)) == NULL)
		return (0);
	hdr = (struct nvmf_disc_log_hdr *)*out;
	e = (struct nvmf_disc_log_entry *)(hdr + 1);

	port = ctrl->port;
	fill_entry(e++, NVMF_SUBTYPE_CURRENT_DISC, ctrl->subnqn, port->family,
	    port_address(port, ctrl), port->service, port->id, port->tls);
	TAILQ_FOREACH(ss, &cf->subsystems, entry)
		TAILQ_FOREACH(port, &cf->ports, entry)
			if (subsystem_on_port(ss, port) &&
			    subsystem_host_allowed(ss, ctrl->hostnqn, peer))
				fill_entry(e++, NVMF_SUBTYPE_NVME, ss->nqn,
				    port->family, port_address(port, ctrl),
				    port->service, port->id, port->tls);
	TAILQ_FOREACH(ref, &cf->referrals, entry)
		fill_entry(e++, NVMF_SUBTYPE_REFERRAL, NVMF_DISCOVERY_NQN,
		    ref->family, ref->address, ref->service, ref->port_id,
		    PORT_TLS_OFF);
	hdr->genctr = discovery_genctr;
	hdr->numrec = n;
	hdr->recfmt = 0;
	return (size);
}

/* Something a discovery log shows changed: tell the persistent hosts. */
void
discovery_changed(void)
{
	struct controller *ctrl;

	discovery_genctr++;
	TAILQ_FOREACH(ctrl, &discovery_controllers, entry)
		if (ctrl->aen_cfg & NVME_AEN_CFG_DISC_CHANGE)
			ctrl_event(ctrl, NVME_AER_DISC_CHANGED);
}
