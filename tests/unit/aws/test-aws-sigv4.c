/* SigV4 signer and EC2 Query encoding without node: the published
 * get-vanilla case (canonical request, string to sign, signature), headers
 * the signer adds, bad input. The byte-for-byte comparison with the official
 * signer over many more cases is test_aws_oracle.py. */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ec2-query.h"
#include "sigv4.h"

static aws_credentials example_creds = {
    .access_key_id = "AKIDEXAMPLE",
    .secret_access_key = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
};

static void test_get_vanilla(void **state)
{
    (void)state;
    aws_kv h[] = {{"Host", "example.amazonaws.com"}};
    aws_sigv4_request r = {
        .method = "GET",
        .path = "/",
        .headers = h,
        .n_headers = 1,
        .region = "us-east-1",
        .service = "service",
        .when = 1440938160,
    };
    aws_sigv4_result res;
    assert_int_equal(aws_sigv4_sign(&r, &example_creds, &res, NULL), 0);
    assert_string_equal(res.amz_date, "20150830T123600Z");
    assert_string_equal(
        res.canonical_request,
        "GET\n/\n\nhost:example.amazonaws.com\nx-amz-date:20150830T123600Z\n\nhost;x-amz-date\n"
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_string_equal(res.string_to_sign,
                        "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n"
                        "bb579772317eb040ac9ed261061d46c1f17a8133879d6129b6e1c25292927e63");
    assert_string_equal(res.signature, "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    assert_string_equal(res.authorization,
                        "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
                        "SignedHeaders=host;x-amz-date, "
                        "Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31");
    aws_sigv4_result_done(&res);
}

static void test_token_checksum_and_dropped_headers(void **state)
{
    (void)state;
    aws_credentials c = example_creds;
    c.session_token = "TOKEN";
    aws_kv h[] = {{"host", "h"},
                  {"Authorization", "old"},
                  {"X-Amz-Date", "19700101T000000Z"},
                  {"User-Agent", "ua"},
                  {"X-Amz-Security-Token", "stale"}};
    const char body[] = "Action=DescribeInstances&Version=2016-11-15";
    aws_sigv4_request r = {
        .method = "POST",
        .path = "/",
        .headers = h,
        .n_headers = 5,
        .payload = body,
        .payload_len = strlen(body),
        .region = "us-east-1",
        .service = "ec2",
        .when = 1440938160,
        .add_content_sha256 = true,
    };
    aws_sigv4_result res;
    assert_int_equal(aws_sigv4_sign(&r, &c, &res, NULL), 0);
    assert_string_equal(res.signed_headers, "host;x-amz-content-sha256;x-amz-date;x-amz-security-token");
    assert_non_null(strstr(res.canonical_request, "x-amz-security-token:TOKEN\n"));
    assert_null(strstr(res.canonical_request, "stale"));
    assert_null(strstr(res.canonical_request, "1970"));
    char hex[65];
    aws_sha256_hex(body, strlen(body), hex);
    assert_string_equal(res.payload_sha256, hex);
    aws_sigv4_result_done(&res);
}

static void test_bad_input(void **state)
{
    (void)state;
    aws_kv dup[] = {{"host", "a"}, {"Host", "b"}};
    aws_sigv4_request r = {
        .method = "GET", .path = "/", .headers = dup, .n_headers = 2, .region = "r", .service = "s"};
    aws_sigv4_result res;
    caa_error *e = NULL;
    assert_int_equal(aws_sigv4_sign(&r, &example_creds, &res, &e), -EINVAL);
    assert_non_null(strstr(e->msg, "twice"));
    caa_error_free(e);
    e = NULL;
    aws_credentials none = {0};
    r.n_headers = 1;
    assert_int_equal(aws_sigv4_sign(&r, &none, &res, &e), -EACCES);
    caa_error_free(e);
    e = NULL;
    r.region = "";
    assert_int_equal(aws_sigv4_sign(&r, &example_creds, &res, &e), -EINVAL);
    caa_error_free(e);
}

static void test_escape(void **state)
{
    (void)state;
    char *s = aws_uri_escape("AZaz09-_.~ !*'()/+=&%é");
    assert_string_equal(s, "AZaz09-_.~%20%21%2A%27%28%29%2F%2B%3D%26%25%C3%A9");
    free(s);
}

static void test_params_encode(void **state)
{
    (void)state;
    aws_params p = {0};
    aws_params_action(&p, "RunInstances", EC2_API_VERSION);
    aws_params_add(&p, "UserData", "I2Nsb3VkLWNvbmZpZwo=");
    aws_params_addf(&p, "podvm x", "TagSpecification.%d.Tag.%d.Value", 1, 2);
    char *body = aws_params_encode(&p);
    assert_string_equal(body, "Action=RunInstances&Version=2016-11-15&UserData=I2Nsb3VkLWNvbmZpZwo%3D&"
                              "TagSpecification.1.Tag.2.Value=podvm%20x");
    assert_string_equal(aws_params_get(&p, "UserData"), "I2Nsb3VkLWNvbmZpZwo=");
    assert_null(aws_params_get(&p, "Nope"));
    free(body);
    aws_params_done(&p);
}

static void test_run_instances_modes(void **state)
{
    (void)state;
    char *sgs[] = {"sg-1", "sg-2", NULL};
    aws_kv tags[] = {{"Name", "podvm-a"}, {"caa.node", "n"}};
    ec2_run_request rr = {
        .image_id = "ami-1",
        .instance_type = "m6a.large",
        .subnet_id = "subnet-1",
        .security_group_ids = sgs,
        .key_name = "k",
        .user_data_b64 = "eA==",
        .sev_snp = true,
        .root_device_name = "/dev/xvda",
        .root_volume_size = 30,
        .tags = tags,
        .n_tags = 2,
        .client_token = "tok",
    };
    aws_params p = {0};
    ec2_build_run_instances(&rr, &p);
    assert_string_equal(aws_params_get(&p, "SecurityGroupId.2"), "sg-2");
    assert_string_equal(aws_params_get(&p, "CpuOptions.AmdSevSnp"), "enabled");
    assert_string_equal(aws_params_get(&p, "BlockDeviceMapping.1.Ebs.VolumeSize"), "30");
    assert_string_equal(aws_params_get(&p, "TagSpecification.1.Tag.2.Key"), "caa.node");
    assert_string_equal(aws_params_get(&p, "MetadataOptions.HttpTokens"), "required");
    assert_string_equal(aws_params_get(&p, "ClientToken"), "tok");
    assert_null(aws_params_get(&p, "NetworkInterface.1.SubnetId"));
    aws_params_done(&p);

    rr.public_ip = true;
    ec2_build_run_instances(&rr, &p);
    assert_null(aws_params_get(&p, "SubnetId"));
    assert_null(aws_params_get(&p, "SecurityGroupId.1"));
    assert_string_equal(aws_params_get(&p, "NetworkInterface.1.SubnetId"), "subnet-1");
    assert_string_equal(aws_params_get(&p, "NetworkInterface.1.SecurityGroupId.2"), "sg-2");
    assert_string_equal(aws_params_get(&p, "NetworkInterface.1.AssociatePublicIpAddress"), "true");
    aws_params_done(&p);

    rr.public_ip = false;
    rr.launch_template = "kata";
    ec2_build_run_instances(&rr, &p);
    assert_string_equal(aws_params_get(&p, "LaunchTemplate.LaunchTemplateName"), "kata");
    assert_null(aws_params_get(&p, "ImageId"));
    assert_null(aws_params_get(&p, "InstanceType"));
    assert_null(aws_params_get(&p, "KeyName"));
    assert_null(aws_params_get(&p, "CpuOptions.AmdSevSnp"));
    assert_string_equal(aws_params_get(&p, "UserData"), "eA==");
    assert_string_equal(aws_params_get(&p, "BlockDeviceMapping.1.DeviceName"), "/dev/xvda");
    aws_params_done(&p);

    rr.launch_template = NULL;
    rr.sev_snp = false;
    rr.root_volume_size = 0;
    ec2_build_run_instances(&rr, &p);
    assert_null(aws_params_get(&p, "CpuOptions.AmdSevSnp"));
    assert_null(aws_params_get(&p, "BlockDeviceMapping.1.DeviceName"));
    aws_params_done(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_get_vanilla),   cmocka_unit_test(test_token_checksum_and_dropped_headers),
        cmocka_unit_test(test_bad_input),     cmocka_unit_test(test_escape),
        cmocka_unit_test(test_params_encode), cmocka_unit_test(test_run_instances_modes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
