package tasks

import "testing"

func TestParseIMDS(t *testing.T) {
	out := "@@instance-id\ni-0abc\n@@placement/availability-zone\neu-west-1b\n@@public-ipv4\n\n@@security-groups\nweb\nssh\n" +
		"@@identity\n{\"accountId\": \"123456789012\", \"region\": \"eu-west-1\", \"instanceId\": \"i-0abc\"}\n"
	f := ParseIMDS(out)
	for k, want := range map[string]any{
		"ec2_instance_id": "i-0abc", "ec2_placement_availability_zone": "eu-west-1b", "ec2_security_groups": "web\nssh",
		"ec2_instance_identity_document_accountid": "123456789012", "ec2_instance_identity_document_region": "eu-west-1",
	} {
		if f[k] != want {
			t.Errorf("%s = %q, want %q", k, f[k], want)
		}
	}
	if _, ok := f["ec2_public_ipv4"]; ok {
		t.Error("an empty value (no public address) became a fact")
	}
}
