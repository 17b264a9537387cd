/* AWS provider options (names, env variables and defaults as upstream),
 * their validation, the shared config/credentials files and the order of
 * the credentials chain. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "aws-config.h"
#include "aws-internal.h"
#include "aws-profile.h"
#include "options.h"
#include "strv.h"
#include "xalloc.h"

static const char *const env_vars[] = {
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_REGION",
    "PODVM_AMI_ID",
    "PODVM_INSTANCE_TYPE",
    "PODVM_INSTANCE_TYPES",
    "AWS_SUBNET_ID",
    "AWS_SG_IDS",
    "SSH_KP_NAME",
    "USE_PODVM_LAUNCHTEMPLATE",
    "PODVM_LAUNCHTEMPLATE_NAME",
    "USE_PUBLIC_IP",
    "ROOT_VOLUME_SIZE",
    "DISABLECVM",
    "TAGS",
    "AWS_PROFILE",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_SHARED_CREDENTIALS_FILE",
    "AWS_CONFIG_FILE",
    "AWS_ROLE_SESSION_NAME",
    "NODE_NAME",
    "AWS_MAX_ATTEMPTS",
};

static int clear_env(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(env_vars) / sizeof(env_vars[0]); i++)
        unsetenv(env_vars[i]);
    /* No real ~/.aws of whoever runs the tests. */
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    return 0;
}

static caa_option_set set_for(aws_config *cfg)
{
    return (caa_option_set){.title = "aws", .opts = aws_options, .n_opts = AWS_N_OPTIONS, .target = cfg};
}

static int parse(aws_config *cfg, int argc, char **argv, caa_error **err)
{
    memset(cfg, 0, sizeof(*cfg));
    caa_option_set s = set_for(cfg);
    return caa_options_parse(&s, 1, argc, argv, err);
}

static void done(aws_config *cfg)
{
    caa_option_set s = set_for(cfg);
    caa_options_free(&s, 1);
}

static void test_defaults_as_upstream(void **state)
{
    (void)state;
    aws_config cfg;
    assert_int_equal(parse(&cfg, 0, NULL, NULL), 0);
    assert_string_equal(cfg.instance_type, "m6a.large");
    assert_string_equal(cfg.lt_name, "kata");
    assert_int_equal(cfg.root_volume_size, 30);
    assert_false(cfg.disable_cvm);
    assert_false(cfg.use_lt);
    assert_false(cfg.use_public_ip);
    assert_string_equal(cfg.image_id, "");
    assert_int_equal(caa_strv_len(cfg.instance_types), 0);
    assert_int_equal(cfg.max_attempts, 8);
    assert_int_equal(cfg.max_concurrent, 128);
    assert_int_equal(cfg.max_response, 16 << 20);
    assert_int_equal(aws_config_validate(&cfg, NULL), 0);
    done(&cfg);
}

static void test_env_names_as_upstream(void **state)
{
    (void)state;
    setenv("AWS_ACCESS_KEY_ID", "AKID", 1);
    setenv("AWS_SECRET_ACCESS_KEY", "secret", 1);
    setenv("AWS_SESSION_TOKEN", "tok", 1);
    setenv("AWS_REGION", "eu-west-1", 1);
    setenv("PODVM_AMI_ID", "ami-0123", 1);
    setenv("PODVM_INSTANCE_TYPE", "c6a.large", 1);
    setenv("PODVM_INSTANCE_TYPES", "c6a.large, m6a.xlarge", 1);
    setenv("AWS_SUBNET_ID", "subnet-0a", 1);
    setenv("AWS_SG_IDS", "sg-1,sg-2", 1);
    setenv("SSH_KP_NAME", "kp", 1);
    setenv("USE_PODVM_LAUNCHTEMPLATE", "true", 1);
    setenv("PODVM_LAUNCHTEMPLATE_NAME", "lt", 1);
    setenv("USE_PUBLIC_IP", "1", 1);
    setenv("ROOT_VOLUME_SIZE", "50", 1);
    setenv("DISABLECVM", "TRUE", 1);
    setenv("TAGS", "team=a,env=prod", 1);
    aws_config cfg;
    char *argv[] = {"-aws-region", "us-west-2", "-tags", "extra=1", "-aws-profile", "p1"};
    assert_int_equal(parse(&cfg, 6, argv, NULL), 0);
    assert_string_equal(cfg.access_key_id, "AKID");
    assert_string_equal(cfg.secret_key, "secret");
    assert_string_equal(cfg.session_token, "tok");
    assert_string_equal(cfg.region, "us-west-2"); /* flag over env */
    assert_string_equal(cfg.image_id, "ami-0123");
    assert_string_equal(cfg.instance_type, "c6a.large");
    assert_int_equal(caa_strv_len(cfg.instance_types), 2);
    assert_string_equal(cfg.instance_types[1], "m6a.xlarge");
    assert_string_equal(cfg.subnet_id, "subnet-0a");
    assert_string_equal(cfg.security_group_ids[1], "sg-2");
    assert_string_equal(cfg.key_name, "kp");
    assert_true(cfg.use_lt);
    assert_string_equal(cfg.lt_name, "lt");
    assert_true(cfg.use_public_ip);
    assert_int_equal(cfg.root_volume_size, 50);
    assert_true(cfg.disable_cvm);
    assert_string_equal(cfg.profile, "p1");
    assert_int_equal(caa_strv_len(cfg.tags), 3);
    assert_int_equal(aws_config_validate(&cfg, NULL), 0);
    done(&cfg);
    clear_env(NULL);
}

static void test_secrets_masked(void **state)
{
    (void)state;
    for (size_t i = 0; i < AWS_N_OPTIONS; i++) {
        const caa_option *o = &aws_options[i];
        bool secret = strcmp(o->name, "aws-access-key-id") == 0 || strcmp(o->name, "aws-secret-key") == 0 ||
                      strcmp(o->name, "aws-session-token") == 0;
        assert_int_equal(!!(o->flags & CAA_OPT_SECRET), secret);
    }
}

static int validate_args(int argc, char **argv, caa_error **err)
{
    aws_config cfg;
    int r = parse(&cfg, argc, argv, err);
    if (r >= 0)
        r = aws_config_validate(&cfg, err);
    done(&cfg);
    return r;
}

static void expect_invalid(int argc, char **argv, const char *needle)
{
    caa_error *e = NULL;
    assert_int_equal(validate_args(argc, argv, &e), -EINVAL);
    if (!strstr(e->msg, needle))
        fail_msg("\"%s\" not in \"%s\"", needle, e->msg);
    caa_error_free(e);
}

static void test_validation(void **state)
{
    (void)state;
    expect_invalid(2, (char *[]){"-aws-access-key-id", "AK"}, "together");
    expect_invalid(2, (char *[]){"-aws-region", "US East"}, "region");
    expect_invalid(2, (char *[]){"-imageid", "ubuntu"}, "AMI");
    expect_invalid(2, (char *[]){"-subnetid", "net-1"}, "subnet");
    expect_invalid(2, (char *[]){"-securitygroupids", "sg-1,default"}, "security group");
    expect_invalid(2, (char *[]){"-instance-type", ""}, "instance-type");
    expect_invalid(4, (char *[]){"-use-lt", "-aws-lt-name", "", "-imageid=ami-1"}, "aws-lt-name");
    expect_invalid(2, (char *[]){"-tags", "aws:x=1"}, "reserved");
    expect_invalid(2, (char *[]){"-tags", "Name=x"}, "set by the adaptor");
    expect_invalid(2, (char *[]){"-tags", "caa.node=x"}, "set by the adaptor");
    expect_invalid(2, (char *[]){"-tags", "a=1,a=2"}, "twice");
    char big[300];
    memset(big, 'k', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    char *arg = xasprintf("%s=v", big);
    expect_invalid(2, (char *[]){"-tags", arg}, "longer");
    free(arg);
    /* 48 tags + Name + 2 ownership tags > 50 */
    char *many = xstrdup("");
    for (int i = 0; i < 48; i++) {
        char *n = xasprintf("%s%st%d=v", many, i ? "," : "", i);
        free(many);
        many = n;
    }
    expect_invalid(2, (char *[]){"-tags", many}, "at most");
    free(many);
    caa_error *e = NULL;
    assert_int_equal(validate_args(2, (char *[]){"-root-volume-size", "-1"}, &e) < 0, 1);
    caa_error_free(e);
}

static void test_tags(void **state)
{
    (void)state;
    char *items[] = {"team=a=b", "empty=", "sp ace=x y", NULL};
    aws_kv *kv;
    size_t n;
    assert_int_equal(aws_parse_tags(items, &kv, &n, NULL), 0);
    assert_int_equal(n, 3);
    assert_string_equal(kv[0].key, "team");
    assert_string_equal(kv[0].value, "a=b");
    assert_string_equal(kv[1].value, "");
    aws_kv_free(kv, n);
    char *bad[] = {"novalue", NULL};
    caa_error *e = NULL;
    assert_int_equal(aws_parse_tags(bad, &kv, &n, &e), -EINVAL);
    caa_error_free(e);
    assert_int_equal(aws_parse_tags(NULL, &kv, &n, NULL), 0);
    assert_int_equal(n, 0);
    aws_kv_free(kv, n);
}

static const char CREDS[] = "# comment\n"
                            "[default]\n"
                            "aws_access_key_id = AKDEFAULT\n"
                            "aws_secret_access_key=SKDEFAULT\r\n"
                            "\n"
                            "[dev]\n"
                            "aws_access_key_id = AKDEV\n"
                            "aws_secret_access_key = SKDEV\n"
                            "aws_session_token = TOKDEV\n"
                            "region = from-credentials-file\n";
static const char CONFIG[] = "[default]\n"
                             "region = us-east-2\n"
                             "[profile dev]\n"
                             "region = eu-central-1\n"
                             "aws_access_key_id = AKCONFIG\n"
                             "[profile irsa]\n"
                             "role_arn = arn:aws:iam::1:role/r\n"
                             "web_identity_token_file = /var/run/token\n"
                             "role_session_name = s1\n"
                             "  ; indented comment\n"
                             "s3 =\n"
                             "  max_concurrent_requests = 2\n"
                             "[dev]\n"
                             "region = not-a-profile-section\n";

/* A FIFO as the shared credentials file: refused at once, not a hang. */
static void test_profile_file_fifo(void **state)
{
    (void)state;
    char dir[] = "/tmp/caa-aws-fifo-XXXXXX";
    assert_non_null(mkdtemp(dir));
    _cleanup_free_ char *fifo = xasprintf("%s/credentials", dir);
    assert_int_equal(mkfifo(fifo, 0600), 0);
    setenv("AWS_SHARED_CREDENTIALS_FILE", fifo, 1);
    aws_profile p;
    caa_error *e = NULL;
    alarm(10);
    assert_int_equal(aws_profile_load("default", &p, &e), -EINVAL);
    alarm(0);
    assert_non_null(strstr(caa_error_msg(e), "not a regular file"));
    caa_error_free(e);
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    unlink(fifo);
    rmdir(dir);
}

static void test_profiles(void **state)
{
    (void)state;
    aws_profile p;
    assert_int_equal(aws_profile_parse(CREDS, CONFIG, "default", &p, NULL), 0);
    assert_true(p.found);
    assert_string_equal(p.access_key_id, "AKDEFAULT");
    assert_string_equal(p.secret_access_key, "SKDEFAULT");
    assert_string_equal(p.region, "us-east-2");
    aws_profile_done(&p);

    assert_int_equal(aws_profile_parse(CREDS, CONFIG, "dev", &p, NULL), 0);
    assert_string_equal(p.access_key_id, "AKDEV"); /* credentials file wins */
    assert_string_equal(p.session_token, "TOKDEV");
    assert_string_equal(p.region, "from-credentials-file");
    aws_profile_done(&p);

    assert_int_equal(aws_profile_parse(CREDS, CONFIG, "irsa", &p, NULL), 0);
    assert_true(p.found);
    assert_null(p.access_key_id);
    assert_string_equal(p.role_arn, "arn:aws:iam::1:role/r");
    assert_string_equal(p.web_identity_token_file, "/var/run/token");
    assert_string_equal(p.role_session_name, "s1");
    aws_profile_done(&p);

    assert_int_equal(aws_profile_parse(CREDS, CONFIG, "missing", &p, NULL), 0);
    assert_false(p.found);
    aws_profile_done(&p);

    caa_error *e = NULL;
    assert_int_equal(aws_profile_parse("[broken\nx=1\n", NULL, "default", &p, &e), -EINVAL);
    caa_error_free(e);
}

static char *write_tmp(const char *content)
{
    char *path = xstrdup("/tmp/caa-aws-test-XXXXXX");
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, strlen(content)), (ssize_t)strlen(content));
    close(fd);
    return path;
}

static void resolve(const aws_config *cfg, bool imds, aws_cred_source *src, char **region, int expect)
{
    caa_error *e = NULL;
    int r = aws_resolve_credentials(cfg, imds, src, region, &e);
    if (r != expect)
        fail_msg("resolve: %d (%s), expected %d", r, e ? e->msg : "", expect);
    caa_error_free(e);
}

static void test_credentials_chain(void **state)
{
    (void)state;
    char *creds = write_tmp(CREDS);
    char *config = write_tmp(CONFIG);
    setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
    setenv("AWS_CONFIG_FILE", config, 1);
    aws_config cfg = {0};
    aws_cred_source src;
    char *region;

    /* 1. static keys first */
    cfg.access_key_id = "AKSTATIC";
    cfg.secret_key = "SKSTATIC";
    cfg.session_token = "";
    resolve(&cfg, true, &src, &region, 0);
    assert_int_equal(src.kind, AWS_CRED_STATIC);
    assert_string_equal(src.fixed.access_key_id, "AKSTATIC");
    assert_null(src.fixed.session_token);
    assert_string_equal(region, "us-east-2"); /* the default profile's region */
    assert_null(strstr(src.description, "SKSTATIC"));
    aws_cred_source_done(&src);
    free(region);

    /* 2. a named profile (flag) over the environment's web identity */
    cfg.access_key_id = cfg.secret_key = NULL;
    cfg.profile = "dev";
    setenv("AWS_ROLE_ARN", "arn:aws:iam::1:role/env", 1);
    setenv("AWS_WEB_IDENTITY_TOKEN_FILE", "/tmp/token", 1);
    resolve(&cfg, true, &src, &region, 0);
    assert_int_equal(src.kind, AWS_CRED_STATIC);
    assert_string_equal(src.fixed.access_key_id, "AKDEV");
    assert_string_equal(src.fixed.session_token, "TOKDEV");
    assert_string_equal(region, "from-credentials-file");
    aws_cred_source_done(&src);
    free(region);

    /* a profile with a role: web identity */
    cfg.profile = NULL;
    setenv("AWS_PROFILE", "irsa", 1);
    resolve(&cfg, true, &src, &region, 0);
    assert_int_equal(src.kind, AWS_CRED_WEB_IDENTITY);
    assert_string_equal(src.token_file, "/var/run/token");
    assert_string_equal(src.session_name, "s1");
    aws_cred_source_done(&src);
    free(region);

    /* a named profile that does not exist is an error, not a fallthrough */
    setenv("AWS_PROFILE", "nope", 1);
    resolve(&cfg, true, &src, &region, -ENOENT);
    unsetenv("AWS_PROFILE");

    /* 3. web identity from the environment before the default profile */
    setenv("AWS_ROLE_SESSION_NAME", "sess", 1);
    resolve(&cfg, true, &src, &region, 0);
    assert_int_equal(src.kind, AWS_CRED_WEB_IDENTITY);
    assert_string_equal(src.role_arn, "arn:aws:iam::1:role/env");
    assert_string_equal(src.session_name, "sess");
    aws_cred_source_done(&src);
    free(region);
    unsetenv("AWS_ROLE_ARN");
    unsetenv("AWS_WEB_IDENTITY_TOKEN_FILE");

    /* 4. default profile keys */
    resolve(&cfg, true, &src, &region, 0);
    assert_int_equal(src.kind, AWS_CRED_STATIC);
    assert_string_equal(src.fixed.access_key_id, "AKDEFAULT");
    aws_cred_source_done(&src);
    free(region);

    /* 5. instance role, else nothing */
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
    resolve(&cfg, true, &src, &region, 0);
    assert_int_equal(src.kind, AWS_CRED_IMDS);
    assert_null(region);
    aws_cred_source_done(&src);
    resolve(&cfg, false, &src, &region, -EACCES);

    unlink(creds);
    unlink(config);
    free(creds);
    free(config);
    clear_env(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup(test_defaults_as_upstream, clear_env),
        cmocka_unit_test_setup(test_env_names_as_upstream, clear_env),
        cmocka_unit_test(test_secrets_masked),
        cmocka_unit_test_setup(test_validation, clear_env),
        cmocka_unit_test(test_tags),
        cmocka_unit_test(test_profiles),
        cmocka_unit_test(test_profile_file_fifo),
        cmocka_unit_test_setup(test_credentials_chain, clear_env),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
