/*
 * Access to the discovery controller: which hosts may connect to the
 * discovery NQN, and the DH-HMAC-CHAP keys a listed host authenticates
 * with (the discovery: section of nvmfd.yaml(5); nvmfctl add-host with the
 * discovery NQN).  Discovery controllers hang off no subsystem, so their
 * credentials come from here; the running configuration is read on the
 * main loop.
 */
#include "config.h"

#include <sys/socket.h>
#include <string.h>

#include "nvmfd.h"

struct host *
discovery_host_find(struct config *cf, const char *hostnqn)
{
	return (host_list_find(&cf->discovery.hosts, hostnqn));
}

bool
discovery_host_allowed(struct config *cf, const char *hostnqn,
    const struct sockaddr *peer)
{
	return (hosts_allow(cf->discovery.allow_any_host, &cf->discovery.hosts,
	    hostnqn, peer));
}

void
discovery_auth_refresh(void)
{
	struct controller *ctrl;

	TAILQ_FOREACH(ctrl, &discovery_controllers, entry)
		auth_ctrl_refresh(ctrl);
}

void
discovery_revoke(const char *hostnqn)
{
	struct controller *ctrl, *next;

	TAILQ_FOREACH_SAFE(ctrl, &discovery_controllers, entry, next)
		if (!discovery_host_allowed(running_config, ctrl->hostnqn,
		    ctrl->admin ? (struct sockaddr *)&ctrl->admin->peer_sa :
		    NULL) && (hostnqn == NULL ||
		    strcmp(ctrl->hostnqn, hostnqn) == 0))
			ctrl_destroy(ctrl, "host no longer allowed");
}
