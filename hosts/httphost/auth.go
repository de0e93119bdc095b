package httphost

import (
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strings"
)

// RequireBearer wraps handlers so they need "Authorization: Bearer
// <token>"; an empty token lets everything through. The token is compared
// in constant time (as hashes, so its length does not leak either), the
// scheme case-insensitively (RFC 9110 §11.1). A refused request gets 401
// with WWW-Authenticate and a JSON body {error, code: UNAUTHORIZED}, and
// denied (if not nil) is called.
func RequireBearer(token string, denied func()) func(http.HandlerFunc) http.HandlerFunc {
	if token == "" {
		return func(next http.HandlerFunc) http.HandlerFunc { return next }
	}
	want := sha256.Sum256([]byte(token))
	return func(next http.HandlerFunc) http.HandlerFunc {
		return func(w http.ResponseWriter, r *http.Request) {
			scheme, tok, ok := strings.Cut(r.Header.Get("Authorization"), " ")
			ok = ok && strings.EqualFold(scheme, "Bearer")
			got := sha256.Sum256([]byte(tok))
			if !ok || subtle.ConstantTimeCompare(got[:], want[:]) != 1 {
				if denied != nil {
					denied()
				}
				w.Header().Set("WWW-Authenticate", `Bearer realm="ferry"`)
				msg := "missing bearer token: send Authorization: Bearer <token>"
				if ok {
					msg = "wrong bearer token"
				}
				writeError(w, http.StatusUnauthorized, CodeUnauthorized, msg, "", nil)
				return
			}
			next(w, r)
		}
	}
}
