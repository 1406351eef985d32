/* The repdisk command: its subcommands, one per file (tools/cmd_NAME.c),
 * each called by the dispatcher (tools/repdisk.c) with argv[0] the
 * subcommand's name.  The helpers they share are in util.h. */
#ifndef REPDISK_TOOL_H
#define REPDISK_TOOL_H

#include "util.h"

int cmd_mount(int argc, char **argv);
int cmd_follow(int argc, char **argv);
int cmd_status(int argc, char **argv);
int cmd_log(int argc, char **argv);
int cmd_log_bench(int argc, char **argv);
int cmd_devbroker(int argc, char **argv);
int cmd_verify(int argc, char **argv);
int cmd_seed(int argc, char **argv);
int cmd_forget(int argc, char **argv);
int cmd_key(int argc, char **argv);

#endif
