/*
 * ccr_send: a freeDiameter (1.2.x) extension that plays a PCEF / OCS towards the gateway under test.
 *
 * Once the configured peer is OPEN (RFC 6733 section 5.6) it sends the requests listed in its
 * configuration file, all at once, and logs the Result-Code of every answer:
 *   - Gy CCR-U (RFC 4006 section 3.1; application 4) with Subscription-Id END_USER_E164,
 *     Multiple-Services-Credit-Control { Rating-Group, Used-Service-Unit { CC-Total-Octets,
 *     Reporting-Reason (3GPP TS 32.299 section 7.2.175) } };
 *   - Gx CCR-U (3GPP TS 29.212 section 5.6.2; application 16777238) with Event-Trigger
 *     USAGE_REPORT (33) and Usage-Monitoring-Information { Monitoring-Key, Used-Service-Unit };
 *   - Sy SNR (3GPP TS 29.219 section 5.6.4; application 16777302, command 8388636) with
 *     Policy-Counter-Status-Report { Policy-Counter-Identifier, Policy-Counter-Status } and a
 *     Subscription-Id extension AVP. Debian's freeDiameter 1.2.1 dictionaries have no Sy
 *     application, command or AVPs, so this extension defines the few it sends.
 *
 * Configuration file (the string after ':' in LoadExtension), one directive per line, '#' comments:
 *   peer <Diameter-Id> <realm>        the peer to wait for and send to (Destination-Host/-Realm)
 *   open_timeout <ms>                 how long to wait for the peer to be OPEN (default 15000)
 *   gy <Session-Id> <msisdn> <CC-Request-Number> <Rating-Group> <CC-Total-Octets> <Reporting-Reason>
 *   gx <Session-Id> <msisdn> <CC-Request-Number> <Monitoring-Key> <CC-Total-Octets>
 *   sy <Session-Id> <msisdn> <Policy-Counter-Identifier> <Policy-Counter-Status>
 *
 * Log lines (freeDiameter's NOTICE level), one per event, parsed by the tests:
 *   ccr_send: open peer=<id>
 *   ccr_send: sent kind=<gy|gx|sy> session=<Session-Id>
 *   ccr_send: answer cmd=<code> app=<id> session=<Session-Id> result=<Result-Code>
 *   ccr_send: done sent=<n> answered=<n>
 *   ccr_send: error <what>
 * An answer 3002 DIAMETER_UNABLE_TO_DELIVER (freeDiameter's own, when routing found no peer for
 * the application yet) is logged as "retry" and the request is sent again, a few times.
 *
 * Built by the interop tests with: gcc -shared -fPIC -o ccr_send.fdx ccr_send.c -lfdcore -lfdproto
 */

#include <freeDiameter/extension.h>

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define VENDOR_3GPP 10415
#define APP_GY 4
#define APP_GX 16777238
#define APP_SY 16777302
#define CMD_CC 272
#define CMD_SN 8388636
#define MAX_REQUESTS 4096
#define MAX_TOKEN 256
#define MAX_RETRIES 20
#define E164 0
#define CC_UPDATE 2
#define EVENT_TRIGGER_USAGE_REPORT 33
#define UNABLE_TO_DELIVER 3002

enum kind { GY, GX, SY };

struct request {
	enum kind kind;
	char session[MAX_TOKEN];
	char msisdn[MAX_TOKEN];
	char key[MAX_TOKEN]; /* Monitoring-Key (gx) or Policy-Counter-Identifier (sy) */
	char status[MAX_TOKEN]; /* Policy-Counter-Status (sy) */
	uint32_t number;
	uint32_t rating_group;
	uint64_t octets;
	int32_t reason;
	int retries;
};

static struct request requests[MAX_REQUESTS];
static int request_count;
static char peer_id[MAX_TOKEN];
static char peer_realm[MAX_TOKEN];
static long open_timeout_ms = 15000;
static pthread_t sender;
static int sender_started;
static pthread_mutex_t count_lock = PTHREAD_MUTEX_INITIALIZER;
static int answered;

/* dictionary objects */
static struct dict_object *cmd_ccr, *cmd_snr;
static struct dict_object *a_session_id, *a_result_code, *a_dest_host, *a_dest_realm, *a_auth_app;
static struct dict_object *a_cc_type, *a_cc_number, *a_service_context, *a_subscription, *a_sub_type, *a_sub_data;
static struct dict_object *a_mscc, *a_rating_group, *a_usu, *a_total_octets, *a_reporting_reason;
static struct dict_object *a_event_trigger, *a_umi, *a_monitoring_key;
static struct dict_object *a_pcsr, *a_pc_id, *a_pc_status;

static int find_avp(vendor_id_t vendor, avp_code_t code, struct dict_object **found)
{
	struct dict_avp_request what = { vendor, code, NULL };
	return fd_dict_search(fd_g_config->cnf_dict, DICT_AVP, AVP_BY_CODE_AND_VENDOR, &what, found, ENOENT);
}

/* Define an AVP unless the loaded dictionaries already have it. */
static int ensure_avp(avp_code_t code, const char *name, enum dict_avp_basetype base, const char *type_name,
		      struct dict_object **found)
{
	struct dict_object *type = NULL;
	struct dict_avp_data data = { code, VENDOR_3GPP, (char *)name, AVP_FLAG_VENDOR | AVP_FLAG_MANDATORY,
				      AVP_FLAG_VENDOR | AVP_FLAG_MANDATORY, base };
	if (find_avp(VENDOR_3GPP, code, found) == 0)
		return 0;
	if (type_name)
		CHECK_FCT(fd_dict_search(fd_g_config->cnf_dict, DICT_TYPE, TYPE_BY_NAME, type_name, &type, ENOENT));
	return fd_dict_new(fd_g_config->cnf_dict, DICT_AVP, &data, type, found);
}

/* The Sy application, its SNR/SNA and the AVPs this extension sends (TS 29.219 sections 5.3, 5.6). */
static int define_sy(void)
{
	struct dict_object *vendor = NULL, *app = NULL;
	vendor_id_t vendor_id = VENDOR_3GPP;
	application_id_t app_id = APP_SY;
	command_code_t code = CMD_SN;
	struct dict_application_data app_data = { APP_SY, "3GPP Sy" };
	struct dict_cmd_data snr = { CMD_SN, "Spending-Status-Notification-Request",
				     CMD_FLAG_REQUEST | CMD_FLAG_PROXIABLE | CMD_FLAG_ERROR,
				     CMD_FLAG_REQUEST | CMD_FLAG_PROXIABLE };
	struct dict_cmd_data sna = { CMD_SN, "Spending-Status-Notification-Answer",
				     CMD_FLAG_REQUEST | CMD_FLAG_PROXIABLE, CMD_FLAG_PROXIABLE };

	CHECK_FCT(fd_dict_search(fd_g_config->cnf_dict, DICT_VENDOR, VENDOR_BY_ID, &vendor_id, &vendor, ENOENT));
	if (fd_dict_search(fd_g_config->cnf_dict, DICT_APPLICATION, APPLICATION_BY_ID, &app_id, &app, ENOENT))
		CHECK_FCT(fd_dict_new(fd_g_config->cnf_dict, DICT_APPLICATION, &app_data, vendor, &app));
	if (fd_dict_search(fd_g_config->cnf_dict, DICT_COMMAND, CMD_BY_CODE_R, &code, &cmd_snr, ENOENT)) {
		CHECK_FCT(fd_dict_new(fd_g_config->cnf_dict, DICT_COMMAND, &snr, app, &cmd_snr));
		CHECK_FCT(fd_dict_new(fd_g_config->cnf_dict, DICT_COMMAND, &sna, app, NULL));
	}
	CHECK_FCT(ensure_avp(2901, "Policy-Counter-Identifier", AVP_TYPE_OCTETSTRING, "UTF8String", &a_pc_id));
	CHECK_FCT(ensure_avp(2902, "Policy-Counter-Status", AVP_TYPE_OCTETSTRING, "UTF8String", &a_pc_status));
	CHECK_FCT(ensure_avp(2903, "Policy-Counter-Status-Report", AVP_TYPE_GROUPED, NULL, &a_pcsr));
	return 0;
}

static int resolve_dictionary(void)
{
	command_code_t cc = CMD_CC;
	CHECK_FCT(fd_dict_search(fd_g_config->cnf_dict, DICT_COMMAND, CMD_BY_CODE_R, &cc, &cmd_ccr, ENOENT));
	CHECK_FCT(find_avp(0, 263, &a_session_id));
	CHECK_FCT(find_avp(0, 268, &a_result_code));
	CHECK_FCT(find_avp(0, 293, &a_dest_host));
	CHECK_FCT(find_avp(0, 283, &a_dest_realm));
	CHECK_FCT(find_avp(0, 258, &a_auth_app));
	CHECK_FCT(find_avp(0, 416, &a_cc_type));
	CHECK_FCT(find_avp(0, 415, &a_cc_number));
	CHECK_FCT(find_avp(0, 461, &a_service_context));
	CHECK_FCT(find_avp(0, 443, &a_subscription));
	CHECK_FCT(find_avp(0, 450, &a_sub_type));
	CHECK_FCT(find_avp(0, 444, &a_sub_data));
	CHECK_FCT(find_avp(0, 456, &a_mscc));
	CHECK_FCT(find_avp(0, 432, &a_rating_group));
	CHECK_FCT(find_avp(0, 446, &a_usu));
	CHECK_FCT(find_avp(0, 421, &a_total_octets));
	CHECK_FCT(find_avp(VENDOR_3GPP, 872, &a_reporting_reason));
	CHECK_FCT(find_avp(VENDOR_3GPP, 1006, &a_event_trigger));
	CHECK_FCT(find_avp(VENDOR_3GPP, 1067, &a_umi));
	CHECK_FCT(find_avp(VENDOR_3GPP, 1066, &a_monitoring_key));
	return define_sy();
}

/* --- message building ------------------------------------------------------------------------- */

static int add_value(msg_or_avp *parent, struct dict_object *model, union avp_value *value, int first)
{
	struct avp *avp = NULL;
	CHECK_FCT(fd_msg_avp_new(model, 0, &avp));
	CHECK_FCT(fd_msg_avp_setvalue(avp, value));
	return fd_msg_avp_add(parent, first ? MSG_BRW_FIRST_CHILD : MSG_BRW_LAST_CHILD, avp);
}

static int add_u32(msg_or_avp *parent, struct dict_object *model, uint32_t v)
{
	union avp_value value = { .u32 = v };
	return add_value(parent, model, &value, 0);
}

static int add_i32(msg_or_avp *parent, struct dict_object *model, int32_t v)
{
	union avp_value value = { .i32 = v };
	return add_value(parent, model, &value, 0);
}

static int add_u64(msg_or_avp *parent, struct dict_object *model, uint64_t v)
{
	union avp_value value = { .u64 = v };
	return add_value(parent, model, &value, 0);
}

static int add_str(msg_or_avp *parent, struct dict_object *model, const char *s, int first)
{
	union avp_value value;
	value.os.data = (uint8_t *)s;
	value.os.len = strlen(s);
	return add_value(parent, model, &value, first);
}

static int add_group(msg_or_avp *parent, struct dict_object *model, struct avp **group)
{
	CHECK_FCT(fd_msg_avp_new(model, 0, group));
	return fd_msg_avp_add(parent, MSG_BRW_LAST_CHILD, *group);
}

static int add_subscription(struct msg *msg, const char *msisdn)
{
	struct avp *group = NULL;
	CHECK_FCT(add_group(msg, a_subscription, &group));
	CHECK_FCT(add_i32(group, a_sub_type, E164));
	return add_str(group, a_sub_data, msisdn, 0);
}

static int build(struct request *r, struct msg **out)
{
	struct msg *msg = NULL;
	struct msg_hdr *hdr = NULL;
	struct avp *group = NULL, *usu = NULL;
	uint32_t app = r->kind == GY ? APP_GY : r->kind == GX ? APP_GX : APP_SY;

	CHECK_FCT(fd_msg_new(r->kind == SY ? cmd_snr : cmd_ccr, MSGFL_ALLOC_ETEID, &msg));
	CHECK_FCT(fd_msg_hdr(msg, &hdr));
	hdr->msg_appl = app;
	CHECK_FCT(add_str(msg, a_session_id, r->session, 1));
	CHECK_FCT(fd_msg_add_origin(msg, 0));
	CHECK_FCT(add_str(msg, a_dest_realm, peer_realm, 0));
	if (r->kind == SY)
		CHECK_FCT(add_str(msg, a_dest_host, peer_id, 0));
	CHECK_FCT(add_u32(msg, a_auth_app, app));
	switch (r->kind) {
	case GY:
		CHECK_FCT(add_str(msg, a_service_context, "32251@3gpp.org", 0));
		CHECK_FCT(add_i32(msg, a_cc_type, CC_UPDATE));
		CHECK_FCT(add_u32(msg, a_cc_number, r->number));
		CHECK_FCT(add_subscription(msg, r->msisdn));
		CHECK_FCT(add_group(msg, a_mscc, &group));
		CHECK_FCT(add_group(group, a_usu, &usu));
		CHECK_FCT(add_u64(usu, a_total_octets, r->octets));
		CHECK_FCT(add_i32(usu, a_reporting_reason, r->reason));
		CHECK_FCT(add_u32(group, a_rating_group, r->rating_group));
		break;
	case GX:
		CHECK_FCT(add_i32(msg, a_cc_type, CC_UPDATE));
		CHECK_FCT(add_u32(msg, a_cc_number, r->number));
		CHECK_FCT(add_subscription(msg, r->msisdn));
		CHECK_FCT(add_i32(msg, a_event_trigger, EVENT_TRIGGER_USAGE_REPORT));
		CHECK_FCT(add_group(msg, a_umi, &group));
		CHECK_FCT(add_str(group, a_monitoring_key, r->key, 0));
		CHECK_FCT(add_group(group, a_usu, &usu));
		CHECK_FCT(add_u64(usu, a_total_octets, r->octets));
		break;
	case SY:
		CHECK_FCT(add_group(msg, a_pcsr, &group));
		CHECK_FCT(add_str(group, a_pc_id, r->key, 0));
		CHECK_FCT(add_str(group, a_pc_status, r->status, 0));
		CHECK_FCT(add_subscription(msg, r->msisdn));
		break;
	}
	*out = msg;
	return 0;
}

/* --- sending and answers ---------------------------------------------------------------------- */

static void on_answer(void *data, struct msg **answer);
static void on_expiry(void *data, DiamId_t sentto, size_t sentto_len, struct msg **request);

static const char *kind_name(enum kind kind)
{
	return kind == GY ? "gy" : kind == GX ? "gx" : "sy";
}

static int send_one(struct request *r)
{
	struct msg *msg = NULL;
	struct timespec deadline;
	CHECK_FCT(build(r, &msg));
	clock_gettime(CLOCK_REALTIME, &deadline);
	deadline.tv_sec += 10;
	CHECK_FCT(fd_msg_send_timeout(&msg, on_answer, r, on_expiry, &deadline));
	LOG_N("ccr_send: sent kind=%s session=%s", kind_name(r->kind), r->session);
	return 0;
}

static void count_answer(void)
{
	int done;
	pthread_mutex_lock(&count_lock);
	done = ++answered;
	pthread_mutex_unlock(&count_lock);
	if (done == request_count)
		LOG_N("ccr_send: done sent=%d answered=%d", request_count, done);
}

static void on_answer(void *data, struct msg **answer)
{
	struct request *r = data;
	struct msg_hdr *hdr = NULL;
	struct avp *avp = NULL;
	struct avp_hdr *avp_hdr = NULL;
	uint32_t result = 0;
	char session[MAX_TOKEN] = "-";

	if (fd_msg_hdr(*answer, &hdr) == 0 && fd_msg_search_avp(*answer, a_result_code, &avp) == 0 && avp &&
	    fd_msg_avp_hdr(avp, &avp_hdr) == 0 && avp_hdr->avp_value)
		result = avp_hdr->avp_value->u32;
	avp = NULL;
	if (fd_msg_search_avp(*answer, a_session_id, &avp) == 0 && avp && fd_msg_avp_hdr(avp, &avp_hdr) == 0 &&
	    avp_hdr->avp_value) {
		size_t len = avp_hdr->avp_value->os.len < MAX_TOKEN - 1 ? avp_hdr->avp_value->os.len : MAX_TOKEN - 1;
		memcpy(session, avp_hdr->avp_value->os.data, len);
		session[len] = '\0';
	}
	if (result == UNABLE_TO_DELIVER && r->retries < MAX_RETRIES) {
		/* routing had no candidate yet (e.g. the CEA's applications not yet applied): try again */
		r->retries++;
		LOG_N("ccr_send: retry session=%s result=%u", r->session, result);
		fd_msg_free(*answer);
		*answer = NULL;
		usleep(100000);
		if (send_one(r))
			LOG_E("ccr_send: error resending session=%s", r->session);
		return;
	}
	LOG_N("ccr_send: answer cmd=%u app=%u session=%s result=%u", hdr ? hdr->msg_code : 0,
	      hdr ? hdr->msg_appl : 0, session, result);
	fd_msg_free(*answer);
	*answer = NULL;
	count_answer();
}

static void on_expiry(void *data, DiamId_t sentto, size_t sentto_len, struct msg **request)
{
	struct request *r = data;
	(void)sentto;
	(void)sentto_len;
	LOG_E("ccr_send: error timeout session=%s", r->session);
	fd_msg_free(*request);
	*request = NULL;
	count_answer();
}

static int peer_is_open(void)
{
	struct peer_hdr *peer = NULL;
	if (fd_peer_getbyid(peer_id, strlen(peer_id), 1, &peer) || peer == NULL)
		return 0;
	return fd_peer_get_state(peer) == STATE_OPEN;
}

static void *send_all(void *arg)
{
	long waited = 0;
	(void)arg;
	if (fd_core_waitstartcomplete()) {
		LOG_E("ccr_send: error core did not start");
		return NULL;
	}
	while (!peer_is_open()) {
		if (waited >= open_timeout_ms) {
			LOG_E("ccr_send: error peer %s not open after %ld ms", peer_id, waited);
			return NULL;
		}
		usleep(20000);
		waited += 20;
	}
	LOG_N("ccr_send: open peer=%s", peer_id);
	for (int i = 0; i < request_count; i++) {
		if (send_one(&requests[i]))
			LOG_E("ccr_send: error sending session=%s", requests[i].session);
	}
	return NULL;
}

/* --- configuration ---------------------------------------------------------------------------- */

static int parse_line(const char *line, int number)
{
	char word[16];
	struct request *r = &requests[request_count];
	unsigned long long octets = 0;

	if (sscanf(line, " %15s", word) != 1 || word[0] == '#')
		return 0;
	if (!strcmp(word, "peer")) {
		if (sscanf(line, " peer %255s %255s", peer_id, peer_realm) == 2)
			return 0;
	} else if (!strcmp(word, "open_timeout")) {
		if (sscanf(line, " open_timeout %ld", &open_timeout_ms) == 1)
			return 0;
	} else if (request_count >= MAX_REQUESTS) {
		LOG_E("ccr_send: more than %d requests", MAX_REQUESTS);
		return EINVAL;
	} else if (!strcmp(word, "gy")) {
		r->kind = GY;
		if (sscanf(line, " gy %255s %255s %u %u %llu %d", r->session, r->msisdn, &r->number,
			   &r->rating_group, &octets, &r->reason) == 6) {
			r->octets = octets;
			request_count++;
			return 0;
		}
	} else if (!strcmp(word, "gx")) {
		r->kind = GX;
		if (sscanf(line, " gx %255s %255s %u %255s %llu", r->session, r->msisdn, &r->number, r->key,
			   &octets) == 5) {
			r->octets = octets;
			request_count++;
			return 0;
		}
	} else if (!strcmp(word, "sy")) {
		r->kind = SY;
		if (sscanf(line, " sy %255s %255s %255s %255s", r->session, r->msisdn, r->key, r->status) == 4) {
			request_count++;
			return 0;
		}
	}
	LOG_E("ccr_send: cannot parse line %d: %s", number, line);
	return EINVAL;
}

static int read_config(const char *path)
{
	char line[1024];
	int number = 0;
	FILE *file;

	if (path == NULL) {
		LOG_E("ccr_send: needs a configuration file");
		return EINVAL;
	}
	file = fopen(path, "r");
	if (file == NULL) {
		LOG_E("ccr_send: cannot open %s: %s", path, strerror(errno));
		return errno;
	}
	while (fgets(line, sizeof(line), file)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (parse_line(line, ++number)) {
			fclose(file);
			return EINVAL;
		}
	}
	fclose(file);
	if (peer_id[0] == '\0') {
		LOG_E("ccr_send: no 'peer' line in %s", path);
		return EINVAL;
	}
	return 0;
}

static int ccr_send_init(char *conffile)
{
	CHECK_FCT(read_config(conffile));
	CHECK_FCT(resolve_dictionary());
	LOG_N("ccr_send: loaded %d requests for %s", request_count, peer_id);
	CHECK_POSIX(pthread_create(&sender, NULL, send_all, NULL));
	sender_started = 1;
	return 0;
}

void fd_ext_fini(void)
{
	if (sender_started) {
		pthread_cancel(sender);
		pthread_join(sender, NULL);
	}
}

EXTENSION_ENTRY("ccr_send", ccr_send_init, "dict_dcca", "dict_dcca_3gpp");
