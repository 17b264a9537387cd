/* Readers of EC2/STS answers on bad and hostile input, address choice and
 * time parsing. (The agreement with the official SDK on good input is
 * test_aws_oracle.py.) */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "ec2-xml.h"
#include "xalloc.h"

#define S(x) x, strlen(x)

static void test_errors(void **state)
{
    (void)state;
    ec2_error e;
    assert_int_equal(
        ec2_parse_error(S("<Response><Errors><Error><Code>Throttling</Code><Message>slow down</Message>"
                          "</Error></Errors><RequestID>r1</RequestID></Response>"),
                        &e),
        0);
    assert_string_equal(e.code, "Throttling");
    assert_string_equal(e.message, "slow down");
    assert_string_equal(e.request_id, "r1");
    ec2_error_done(&e);
    assert_int_equal(ec2_parse_error(S("<ErrorResponse><Error><Code>X</Code></Error></ErrorResponse>"), &e),
                     0);
    assert_string_equal(e.code, "X");
    assert_null(e.message);
    ec2_error_done(&e);
    /* not error documents */
    assert_int_equal(ec2_parse_error(S("<Response><Errors/></Response>"), &e), -EPROTO);
    assert_int_equal(ec2_parse_error(S("<html><body>Bad Gateway</body></html>"), &e), -EPROTO);
    assert_int_equal(ec2_parse_error(S("<Response><Errors><Error><Code>X</Code>"), &e), -EPROTO);
    assert_int_equal(ec2_parse_error("", 0, &e), -EPROTO);
    assert_int_equal(ec2_parse_error(NULL, 0, &e), -EPROTO);
}

static void test_hostile(void **state)
{
    (void)state;
    ec2_instance_list l;
    caa_error *e = NULL;
    /* truncated */
    assert_int_equal(
        ec2_parse_describe_instances(S("<DescribeInstancesResponse><reservationSet><item>"), &l, &e),
        -EPROTO);
    assert_non_null(strstr(e->msg, "DescribeInstances"));
    caa_error_free(e);
    e = NULL;
    /* billion laughs: refused for having a DTD at all */
    const char *laughs =
        "<?xml version=\"1.0\"?><!DOCTYPE lolz [<!ENTITY lol \"lol\">"
        "<!ENTITY lol2 \"&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;\">"
        "<!ENTITY lol3 \"&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;\">]>"
        "<DescribeInstancesResponse><nextToken>&lol3;</nextToken></DescribeInstancesResponse>";
    assert_int_equal(ec2_parse_describe_instances(S(laughs), &l, &e), -EPROTO);
    caa_error_free(e);
    e = NULL;
    /* external entity */
    const char *xxe = "<?xml version=\"1.0\"?><!DOCTYPE r [<!ENTITY x SYSTEM \"file:///etc/passwd\">]>"
                      "<DescribeInstancesResponse><nextToken>&x;</nextToken></DescribeInstancesResponse>";
    assert_int_equal(ec2_parse_describe_instances(S(xxe), &l, &e), -EPROTO);
    caa_error_free(e);
    e = NULL;
    /* very deep nesting */
    size_t depth = 100000;
    char *deep = xmalloc(depth * 7 + 64);
    char *p = deep;
    p += sprintf(p, "<DescribeInstancesResponse>");
    for (size_t i = 0; i < depth; i++)
        p += sprintf(p, "<item>");
    *p = '\0';
    assert_int_equal(ec2_parse_describe_instances(deep, strlen(deep), &l, &e), -EPROTO);
    caa_error_free(e);
    e = NULL;
    free(deep);
    /* wrong root element */
    assert_int_equal(ec2_parse_run_instances(S("<DescribeInstancesResponse/>"), &l, &e), -EPROTO);
    caa_error_free(e);
    e = NULL;
    /* not XML */
    assert_int_equal(ec2_parse_run_instances(S("{\"instances\": []}"), &l, &e), -EPROTO);
    caa_error_free(e);
    e = NULL;
    /* NUL inside */
    static const char nul[] = "<RunInstancesResponse>\0</RunInstancesResponse>";
    assert_int_equal(ec2_parse_run_instances(nul, sizeof(nul) - 1, &l, &e), -EPROTO);
    caa_error_free(e);
}

static void test_numbers(void **state)
{
    (void)state;
    ec2_instance_type_list tl;
    caa_error *e = NULL;
    assert_int_equal(
        ec2_parse_describe_instance_types(
            S("<DescribeInstanceTypesResponse><instanceTypeSet><item><instanceType>m</instanceType>"
              "<vCpuInfo><defaultVCpus>two</defaultVCpus></vCpuInfo></item></instanceTypeSet>"
              "</DescribeInstanceTypesResponse>"),
            &tl, &e),
        -EPROTO);
    caa_error_free(e);
    e = NULL;
    assert_int_equal(
        ec2_parse_describe_instance_types(
            S("<DescribeInstanceTypesResponse><instanceTypeSet><item><instanceType>m</instanceType>"
              "<gpuInfo><gpus><item><count>-3</count></item></gpus></gpuInfo></item></instanceTypeSet>"
              "</DescribeInstanceTypesResponse>"),
            &tl, &e),
        -EPROTO);
    caa_error_free(e);
    e = NULL;
    assert_int_equal(
        ec2_parse_describe_instance_types(
            S("<DescribeInstanceTypesResponse><instanceTypeSet><item><vCpuInfo><defaultVCpus>2"
              "</defaultVCpus></vCpuInfo></item></instanceTypeSet></DescribeInstanceTypesResponse>"),
            &tl, &e),
        -EPROTO); /* no name */
    caa_error_free(e);
    e = NULL;
    assert_int_equal(
        ec2_parse_describe_instance_types(
            S("<DescribeInstanceTypesResponse><instanceTypeSet><item><instanceType>m</instanceType>"
              "<vCpuInfo><defaultVCpus>99999999999999999999</defaultVCpus></vCpuInfo></item>"
              "</instanceTypeSet></DescribeInstanceTypesResponse>"),
            &tl, &e),
        -EPROTO);
    caa_error_free(e);
    e = NULL;
    ec2_image_list il;
    assert_int_equal(
        ec2_parse_describe_images(S("<DescribeImagesResponse><imagesSet><item><imageId>ami-1</imageId>"
                                    "<blockDeviceMapping><item><ebs><volumeSize>-1</volumeSize></ebs>"
                                    "</item></blockDeviceMapping></item></imagesSet>"
                                    "</DescribeImagesResponse>"),
                                  &il, &e),
        -EPROTO);
    caa_error_free(e);
}

static void test_addresses_of_instance(void **state)
{
    (void)state;
    ec2_instance_list l;
    assert_int_equal(
        ec2_parse_describe_instances(
            S("<DescribeInstancesResponse><reservationSet><item><instancesSet><item>"
              "<instanceId>i-1</instanceId><ipAddress>9.9.9.9</ipAddress>"
              "<networkInterfaceSet><item><privateIpAddress>10.0.0.2</privateIpAddress>"
              "<association><publicIp>1.1.1.1</publicIp></association>"
              "<attachment><deviceIndex>1</deviceIndex></attachment></item>"
              "<item><privateIpAddress>10.0.0.1</privateIpAddress>"
              "<association><publicIp>2.2.2.2</publicIp></association>"
              "<attachment><deviceIndex>0</deviceIndex></attachment></item></networkInterfaceSet>"
              "</item><item><instanceId>i-2</instanceId><ipAddress>8.8.8.8</ipAddress></item>"
              "<item><instanceId>i-3</instanceId><privateIpAddress></privateIpAddress></item>"
              "</instancesSet></item></reservationSet></DescribeInstancesResponse>"),
            &l, NULL),
        0);
    assert_int_equal(l.n, 3);
    /* device index 0 wins over list order */
    assert_string_equal(ec2_instance_address(&l.v[0], 1), "2.2.2.2");
    assert_string_equal(ec2_instance_address(&l.v[0], 0), "10.0.0.1");
    assert_string_equal(ec2_instance_address(&l.v[1], 1), "8.8.8.8");
    assert_null(ec2_instance_address(&l.v[1], 0));
    assert_null(ec2_instance_address(&l.v[2], 0)); /* empty is none */
    assert_null(ec2_instance_tag(&l.v[0], "Name"));
    ec2_instance_list_done(&l);
}

static void test_sts_and_time(void **state)
{
    (void)state;
    time_t t;
    assert_int_equal(aws_parse_iso8601("2026-11-28T12:00:00Z", &t), 0);
    assert_int_equal(t, 1795867200);
    assert_int_equal(aws_parse_iso8601("2026-11-28T12:00:00.999Z", &t), 0);
    assert_int_equal(t, 1795867200);
    assert_int_equal(aws_parse_iso8601("2026-11-28T12:00:00+00:00", &t), 0);
    assert_int_equal(aws_parse_iso8601("2026-11-28T12:00:00+02:00", &t), -EINVAL);
    assert_int_equal(aws_parse_iso8601("2026-11-28", &t), -EINVAL);
    assert_int_equal(aws_parse_iso8601("2026-11-28T12:00:00.Z", &t), -EINVAL);
    assert_int_equal(aws_parse_iso8601(NULL, &t), -EINVAL);

    aws_credentials c;
    caa_error *e = NULL;
    /* credentials without a session token or expiry are refused */
    assert_int_equal(
        sts_parse_assume_role(S("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
                                "<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S"
                                "</SecretAccessKey></Credentials></AssumeRoleWithWebIdentityResult>"
                                "</AssumeRoleWithWebIdentityResponse>"),
                              &c, &e),
        -EPROTO);
    caa_error_free(e);
    e = NULL;
    assert_int_equal(
        sts_parse_assume_role(S("<AssumeRoleWithWebIdentityResponse><AssumeRoleWithWebIdentityResult>"
                                "<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>S"
                                "</SecretAccessKey><SessionToken>T</SessionToken><Expiration>soon"
                                "</Expiration></Credentials></AssumeRoleWithWebIdentityResult>"
                                "</AssumeRoleWithWebIdentityResponse>"),
                              &c, &e),
        -EPROTO);
    caa_error_free(e);
}

static void test_expect_root(void **state)
{
    (void)state;
    caa_error *e = NULL;
    assert_int_equal(
        ec2_parse_expect_root(S("<ReleaseAddressResponse><return>true</return></ReleaseAddressResponse>"),
                              "ReleaseAddressResponse", NULL),
        0);
    assert_int_equal(ec2_parse_expect_root(S("<Other/>"), "ReleaseAddressResponse", &e), -EPROTO);
    assert_non_null(strstr(e->msg, "ReleaseAddressResponse"));
    caa_error_free(e);
}

/* The second ENI's answers (external-net-via-pod-vm), in EC2's shape. */
static void test_network_interface(void **state)
{
    (void)state;
    char *id = NULL;
    caa_error *e = NULL;
    assert_int_equal(
        ec2_parse_create_network_interface(
            S("<CreateNetworkInterfaceResponse xmlns=\"http://ec2.amazonaws.com/doc/2016-11-15/\">"
              "<requestId>r</requestId><networkInterface><networkInterfaceId>eni-0a1b2c3d4e5f60718"
              "</networkInterfaceId><subnetId>subnet-1</subnetId><status>pending</status>"
              "</networkInterface></CreateNetworkInterfaceResponse>"),
            &id, NULL),
        0);
    assert_string_equal(id, "eni-0a1b2c3d4e5f60718");
    free(id);
    id = NULL;
    assert_int_equal(ec2_parse_attach_network_interface(
                         S("<AttachNetworkInterfaceResponse><requestId>r</requestId><attachmentId>"
                           "eni-attach-0123456789abcdef0</attachmentId><networkCardIndex>0</networkCardIndex>"
                           "</AttachNetworkInterfaceResponse>"),
                         &id, NULL),
                     0);
    assert_string_equal(id, "eni-attach-0123456789abcdef0");
    free(id);
    id = NULL;
    /* Missing, empty, not id-like (it goes into the next request), wrong root. */
    static const char *const bad[] = {
        "<CreateNetworkInterfaceResponse><networkInterface/></CreateNetworkInterfaceResponse>",
        "<CreateNetworkInterfaceResponse><networkInterface><networkInterfaceId></networkInterfaceId>"
        "</networkInterface></CreateNetworkInterfaceResponse>",
        "<CreateNetworkInterfaceResponse><networkInterface><networkInterfaceId>eni-1&amp;Action=x"
        "</networkInterfaceId></networkInterface></CreateNetworkInterfaceResponse>",
        "<AttachNetworkInterfaceResponse><networkInterface><networkInterfaceId>eni-1</networkInterfaceId>"
        "</networkInterface></AttachNetworkInterfaceResponse>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(ec2_parse_create_network_interface(bad[i], strlen(bad[i]), &id, &e), -EPROTO);
        assert_null(id);
        caa_error_free(e);
        e = NULL;
    }
    assert_int_equal(ec2_parse_attach_network_interface(S("<AttachNetworkInterfaceResponse/>"), &id, &e),
                     -EPROTO);
    assert_null(id);
    caa_error_free(e);
    e = NULL;
    assert_int_equal(
        ec2_parse_allocate_address(S("<AllocateAddressResponse><publicIp>198.51.100.7</publicIp>"
                                     "<domain>vpc</domain><allocationId>eipalloc-0a1b2c3d4e5f60718"
                                     "</allocationId></AllocateAddressResponse>"),
                                   &id, NULL),
        0);
    assert_string_equal(id, "eipalloc-0a1b2c3d4e5f60718");
    free(id);
    id = NULL;
    assert_int_equal(ec2_parse_allocate_address(S("<AllocateAddressResponse><publicIp>198.51.100.7</publicIp>"
                                                  "</AllocateAddressResponse>"),
                                                &id, &e),
                     -EPROTO);
    assert_null(id);
    caa_error_free(e);
}

/* The orphan sweep's readers: tags (a missing key or value is ""), the
 * attachment, the ENI an address is on; a wrong root or a DTD is refused
 * with nothing allocated. */
static void test_leftover_listings(void **state)
{
    (void)state;
    ec2_eni_list l;
    assert_int_equal(
        ec2_parse_describe_network_interfaces(
            S("<DescribeNetworkInterfacesResponse><networkInterfaceSet>"
              "<item><networkInterfaceId>eni-0123456789abcdef0</networkInterfaceId>"
              "<status>available</status><tagSet><item><key>caa.node</key><value>n 1</value></item>"
              "<item><key>k</key></item><item><value>v</value></item></tagSet></item>"
              "<item><networkInterfaceId>eni-2</networkInterfaceId><status>in-use</status>"
              "<attachment><instanceId>i-0123456789abcdef0</instanceId></attachment></item>"
              "</networkInterfaceSet><nextToken>t2</nextToken></DescribeNetworkInterfacesResponse>"),
            &l, NULL),
        0);
    assert_int_equal(l.n, 2);
    assert_string_equal(l.v[0].status, "available");
    assert_null(l.v[0].attached_instance_id);
    assert_int_equal(l.v[0].n_tags, 3);
    assert_string_equal(ec2_tag(l.v[0].tags, l.v[0].n_tags, "caa.node"), "n 1");
    assert_string_equal(ec2_tag(l.v[0].tags, l.v[0].n_tags, "k"), "");
    assert_string_equal(ec2_tag(l.v[0].tags, l.v[0].n_tags, ""), "v");
    assert_null(ec2_tag(l.v[0].tags, l.v[0].n_tags, "caa.sandbox-id"));
    assert_string_equal(l.v[1].attached_instance_id, "i-0123456789abcdef0");
    assert_int_equal(l.v[1].n_tags, 0);
    assert_string_equal(l.next_token, "t2");
    ec2_eni_list_done(&l);

    ec2_address_list al;
    assert_int_equal(ec2_parse_describe_addresses(
                         S("<DescribeAddressesResponse><addressesSet><item><allocationId>eipalloc-1"
                           "</allocationId><networkInterfaceId>eni-1</networkInterfaceId><tagSet><item>"
                           "<key>caa.node</key><value>n</value></item></tagSet></item></addressesSet>"
                           "</DescribeAddressesResponse>"),
                         &al, NULL),
                     0);
    assert_int_equal(al.n, 1);
    assert_string_equal(al.v[0].network_interface_id, "eni-1");
    assert_null(al.v[0].association_id);
    assert_string_equal(ec2_tag(al.v[0].tags, al.v[0].n_tags, "caa.node"), "n");
    ec2_address_list_done(&al);

    static const char *const bad[] = {
        "<DescribeAddressesResponse><networkInterfaceSet/></DescribeAddressesResponse>",
        "<DescribeNetworkInterfacesResponse><networkInterfaceSet><item>",
        "<!DOCTYPE x [<!ENTITY a "
        "\"b\">]><DescribeNetworkInterfacesResponse>&a;</DescribeNetworkInterfacesResponse>",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        caa_error *e = NULL;
        assert_int_equal(ec2_parse_describe_network_interfaces(bad[i], strlen(bad[i]), &l, &e), -EPROTO);
        assert_null(l.v);
        assert_int_equal(l.n, 0);
        assert_non_null(e);
        caa_error_free(e);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_hostile),
        cmocka_unit_test(test_numbers),
        cmocka_unit_test(test_addresses_of_instance),
        cmocka_unit_test(test_sts_and_time),
        cmocka_unit_test(test_expect_root),
        cmocka_unit_test(test_network_interface),
        cmocka_unit_test(test_leftover_listings),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
