/* mh_status_cmd.h - the `magento-healthd status` subcommand (see mh_status_cmd.c). */
#ifndef MH_STATUS_CMD_H
#define MH_STATUS_CMD_H

/* Runs `status` with its own arguments (argv[0] is "status"). Returns the exit code. */
int mh_status_main(int argc, char **argv, const char *default_config);

#endif
