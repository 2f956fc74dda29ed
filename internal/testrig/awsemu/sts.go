package awsemu

import (
	"fmt"
	"net/http"
	"strings"
	"time"
)

func (s *Server) sts(c call) (string, *apiError) {
	switch c.action {
	case "GetCallerIdentity":
		var b xmlw
		b.elem("Arn", fmt.Sprintf("arn:aws:iam::%s:user/ferry", c.account))
		b.elem("UserId", "AIDAEMULATEDUSER")
		b.elem("Account", c.account)
		return queryResponse(c, b.String()), nil
	case "AssumeRole":
		arn := c.params.Get("RoleArn")
		session := c.params.Get("RoleSessionName")
		// arn:aws:iam::ACCOUNT:role/NAME
		parts := strings.SplitN(arn, ":", 6)
		if len(parts) != 6 || parts[2] != "iam" || len(parts[4]) != 12 || !strings.HasPrefix(parts[5], "role/") {
			return "", validation("%s is not a valid role ARN", arn)
		}
		if session == "" {
			return "", validation("1 validation error detected: Value null at 'roleSessionName' failed to satisfy constraint: Member must not be null")
		}
		account := parts[4]
		s.mu.Lock()
		s.seq++
		akid := fmt.Sprintf("ASIAEMU%013d", s.seq)
		s.keys[akid] = account
		s.mu.Unlock()
		var b xmlw
		b.raw("<Credentials>")
		b.elem("AccessKeyId", akid)
		b.elem("SecretAccessKey", "emulated-secret-"+akid)
		b.elem("SessionToken", "emulated-token-"+akid)
		b.ts("Expiration", time.Now().Add(time.Hour))
		b.raw("</Credentials><AssumedRoleUser>")
		b.elem("Arn", fmt.Sprintf("arn:aws:sts::%s:assumed-role/%s/%s", account, strings.TrimPrefix(parts[5], "role/"), session))
		b.elem("AssumedRoleId", "AROAEMULATED:"+session)
		b.raw("</AssumedRoleUser>")
		return queryResponse(c, b.String()), nil
	}
	return "", errf(http.StatusBadRequest, "InvalidAction", "Could not find operation %s for version 2011-06-15", c.action)
}
