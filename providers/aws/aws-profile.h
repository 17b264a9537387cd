/* AWS shared configuration files (~/.aws/credentials and ~/.aws/config):
 * the settings of one profile. The credentials file has "[name]" sections,
 * the config file "[profile name]" (and "[default]"); for a key set in both,
 * the credentials file wins. */
#pragma once

#include <stdbool.h>

#include "error.h"

typedef struct aws_profile {
    char *access_key_id;
    char *secret_access_key;
    char *session_token;
    char *region;
    char *role_arn;
    char *web_identity_token_file;
    char *role_session_name;
    bool found; /* the profile has a section in either file */
} aws_profile;

/* Parses the two documents (either may be NULL). */
int aws_profile_parse(const char *credentials_text, const char *config_text, const char *name,
                      aws_profile *ret, caa_error **err);
/* Reads the files ($AWS_SHARED_CREDENTIALS_FILE, $AWS_CONFIG_FILE, else
 * ~/.aws/credentials and ~/.aws/config; missing files are empty). */
int aws_profile_load(const char *name, aws_profile *ret, caa_error **err);
void aws_profile_done(aws_profile *p);
