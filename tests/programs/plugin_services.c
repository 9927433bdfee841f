/* The services as seen from the program's own thread (no hook running): the key-value store
 * and barriers are refused, virtual ids, protected fds and sections work. Prints
 * "key value" lines. */
#include <stdio.h>
#include <string.h>

#include "dmtcp.h"

int main(void) {
  setvbuf(stdout, NULL, _IOLBF, 0);
  printf("api %d\n", dmtcp_plugin_api_version());
  printf("kv_from_main %d\n", dmtcp_kvdb_set("test", "k", 1, "v", 1));
  printf("barrier_from_main %d\n", dmtcp_global_barrier("b"));
  char buf[8];
  printf("load_missing %zd\n", dmtcp_plugin_load("nothing", buf, sizeof buf));
  long long v1 = dmtcp_vid_register("things", 100);
  long long v2 = dmtcp_vid_register("things", 200);
  printf("vid1 %lld\nvid2 %lld\n", v1, v2);
  printf("vid1_again %lld\n", dmtcp_vid_register("things", 100));
  printf("update %d\n", dmtcp_vid_update("things", v1, 200 + 1));
  printf("real1 %lld\n", dmtcp_vid_to_real("things", v1));
  printf("virt_of_new %lld\n", dmtcp_vid_to_virtual("things", 201));
  printf("virt_of_old %lld\n", dmtcp_vid_to_virtual("things", 100));
  /* 100 is free again as a real id, but virtual id 100 is taken: a fresh virtual id. */
  printf("vid3 %lld\n", dmtcp_vid_register("things", 100));
  printf("other_table %lld\n", dmtcp_vid_to_real("others", v1));
  printf("unregister %d\n", dmtcp_vid_unregister("things", v2));
  printf("real2_gone %lld\n", dmtcp_vid_to_real("things", v2));
  printf("protect %d\n", dmtcp_protect_fd(42));
  printf("is_protected_42 %d\n", dmtcp_is_protected_fd(42));
  printf("is_protected_43 %d\n", dmtcp_is_protected_fd(43));
  printf("is_protected_coord %d\n", dmtcp_is_protected_fd(821));
  printf("unprotect %d\n", dmtcp_unprotect_fd(42));
  printf("is_protected_42_after %d\n", dmtcp_is_protected_fd(42));
  dmtcp_log(DMTCP_LOG_WARNING, "plugin_services: a line from dmtcp_log");
  return 0;
}
