package redfish

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"sort"
	"strconv"
	"strings"
)

type obj = map[string]any

func link(p string) obj { return obj{"@odata.id": p} }

func systemPath(name string) string { return v1 + "/Systems/" + url.PathEscape(name) }

func collection(id, typ, name string, members []string) obj {
	m := make([]obj, 0, len(members))
	for _, p := range members {
		m = append(m, link(p))
	}
	short := strings.TrimPrefix(strings.SplitN(typ, ".", 2)[0], "#")
	return obj{
		"@odata.context": v1 + "/$metadata#" + short + "." + short,
		"@odata.id":      id, "@odata.type": typ, "Name": name,
		"Members": m, "Members@odata.count": len(m),
	}
}

func (s *Service) serviceRoot(w http.ResponseWriter, r *http.Request, _ []string) {
	writeJSON(w, http.StatusOK, obj{
		"@odata.context": v1 + "/$metadata#ServiceRoot.ServiceRoot",
		"@odata.id":      v1 + "/", "@odata.type": "#ServiceRoot.v1_11_0.ServiceRoot",
		"Id": "RootService", "Name": "metal Redfish Service", "RedfishVersion": "1.11.0",
		"Systems":        link(v1 + "/Systems"),
		"SessionService": link(v1 + "/SessionService"),
		"Links":          obj{"Sessions": link(v1 + "/SessionService/Sessions")},
	})
}

func (s *Service) odataDoc(w http.ResponseWriter, r *http.Request, _ []string) {
	writeJSON(w, http.StatusOK, obj{
		"@odata.context": v1 + "/$metadata",
		"value": []obj{
			{"name": "Service", "kind": "Singleton", "url": v1 + "/"},
			{"name": "Systems", "kind": "Singleton", "url": v1 + "/Systems"},
			{"name": "SessionService", "kind": "Singleton", "url": v1 + "/SessionService"},
		},
	})
}

// systemErr answers a Systems or Controller error.
func (s *Service) systemErr(w http.ResponseWriter, r *http.Request, name string, err error) {
	switch {
	case errors.Is(err, ErrNotFound):
		writeError(w, http.StatusNotFound, msgResourceNotFound, fmt.Sprintf("The requested resource of type ComputerSystem named %q was not found.", name), "")
	case errors.Is(err, ErrInvalid):
		writeError(w, http.StatusBadRequest, msgGeneralError, err.Error(), "")
	default:
		s.log.Warn("redfish request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, msgInternalError, "The request failed: "+err.Error(), "Retry the request; check the machine's BMC.")
	}
}

func (s *Service) listSystems(w http.ResponseWriter, r *http.Request, _ []string) {
	systems, err := s.sys.ListSystems(r.Context())
	if err != nil {
		s.systemErr(w, r, "", err)
		return
	}
	names := make([]string, 0, len(systems))
	for _, sys := range systems {
		names = append(names, sys.Name)
	}
	sort.Strings(names)
	paths := make([]string, len(names))
	for i, n := range names {
		paths[i] = systemPath(n)
	}
	writeJSON(w, http.StatusOK, collection(v1+"/Systems", "#ComputerSystemCollection.ComputerSystemCollection", "Computer System Collection", paths))
}

func powerState(p string) any {
	switch strings.ToLower(p) {
	case "on":
		return "On"
	case "off":
		return "Off"
	}
	return nil
}

func orDefault(v, d string) string {
	if v == "" {
		return d
	}
	return v
}

func (s *Service) getSystem(w http.ResponseWriter, r *http.Request, args []string) {
	sys, err := s.sys.GetSystem(r.Context(), args[0])
	if err != nil {
		s.systemErr(w, r, args[0], err)
		return
	}
	p := systemPath(sys.Name)
	body := obj{
		"@odata.context": v1 + "/$metadata#ComputerSystem.ComputerSystem",
		"@odata.id":      p, "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem",
		"Id": sys.Name, "Name": sys.Name, "SystemType": "Physical",
		"SerialNumber": sys.Serial, "UUID": sys.UUID,
		"PowerState": powerState(sys.PowerState),
		"Status":     obj{"State": orDefault(sys.State, "Enabled"), "Health": orDefault(sys.Health, "OK")},
		"Boot": obj{
			"BootSourceOverrideTarget":                         orDefault(sys.Boot.Target, "None"),
			"BootSourceOverrideEnabled":                        orDefault(sys.Boot.Enabled, BootDisabled),
			"BootSourceOverrideMode":                           orDefault(sys.Boot.Mode, BootModeUEFI),
			"BootSourceOverrideTarget@Redfish.AllowableValues": BootTargets,
		},
		"ProcessorSummary": obj{
			"Count": sys.CPUCount, "CoreCount": sys.CPUCores, "Model": sys.CPUModel,
			"Status": obj{"State": "Enabled", "Health": "OK"},
		},
		"MemorySummary": obj{
			"TotalSystemMemoryGiB": sys.MemoryGiB,
			"Status":               obj{"State": "Enabled", "Health": "OK"},
		},
		"EthernetInterfaces": link(p + "/EthernetInterfaces"),
		"Actions": obj{"#ComputerSystem.Reset": obj{
			"target":                            p + "/Actions/ComputerSystem.Reset",
			"ResetType@Redfish.AllowableValues": ResetTypes,
			"@Redfish.ActionInfo":               p + "/ResetActionInfo",
		}},
	}
	writeJSON(w, http.StatusOK, body)
}

func (s *Service) resetActionInfo(w http.ResponseWriter, r *http.Request, args []string) {
	if _, err := s.sys.GetSystem(r.Context(), args[0]); err != nil {
		s.systemErr(w, r, args[0], err)
		return
	}
	writeJSON(w, http.StatusOK, obj{
		"@odata.id": systemPath(args[0]) + "/ResetActionInfo", "@odata.type": "#ActionInfo.v1_1_2.ActionInfo",
		"Id": "ResetActionInfo", "Name": "Reset Action Info",
		"Parameters": []obj{{"Name": "ResetType", "Required": true, "DataType": "String", "AllowableValues": ResetTypes}},
	})
}

func (s *Service) listNICs(w http.ResponseWriter, r *http.Request, args []string) {
	sys, err := s.sys.GetSystem(r.Context(), args[0])
	if err != nil {
		s.systemErr(w, r, args[0], err)
		return
	}
	base := systemPath(sys.Name) + "/EthernetInterfaces"
	var paths []string
	for i := range sys.MACs {
		paths = append(paths, base+"/"+strconv.Itoa(i+1))
	}
	writeJSON(w, http.StatusOK, collection(base, "#EthernetInterfaceCollection.EthernetInterfaceCollection", "Ethernet Network Interface Collection", paths))
}

func (s *Service) getNIC(w http.ResponseWriter, r *http.Request, args []string) {
	sys, err := s.sys.GetSystem(r.Context(), args[0])
	if err != nil {
		s.systemErr(w, r, args[0], err)
		return
	}
	i, err := strconv.Atoi(args[1])
	if err != nil || i < 1 || i > len(sys.MACs) || strconv.Itoa(i) != args[1] {
		writeError(w, http.StatusNotFound, msgResourceMissingAtURI, "The resource at the URI "+r.URL.Path+" was not found.", "")
		return
	}
	mac := sys.MACs[i-1]
	writeJSON(w, http.StatusOK, obj{
		"@odata.context": v1 + "/$metadata#EthernetInterface.EthernetInterface",
		"@odata.id":      systemPath(sys.Name) + "/EthernetInterfaces/" + args[1], "@odata.type": "#EthernetInterface.v1_6_0.EthernetInterface",
		"Id": args[1], "Name": "Ethernet Interface " + args[1],
		"MACAddress": mac, "PermanentMACAddress": mac,
		"Status": obj{"State": "Enabled", "Health": "OK"},
	})
}

// readJSON decodes a request body into a map of raw properties.
func readJSON(w http.ResponseWriter, r *http.Request) (map[string]json.RawMessage, bool) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 64<<10+1))
	if err == nil && len(body) > 64<<10 {
		err = errors.New("body larger than 64 KiB")
	}
	var m map[string]json.RawMessage
	if err == nil {
		dec := json.NewDecoder(bytes.NewReader(body))
		err = dec.Decode(&m)
		if err == nil && dec.More() {
			err = errors.New("trailing data after the JSON object")
		}
		if err == nil && m == nil {
			err = errors.New("body is not a JSON object")
		}
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, msgMalformedJSON, "The request body submitted was malformed JSON: "+err.Error(), "Send a JSON object.")
		return nil, false
	}
	// OData annotations in requests are informational.
	for k := range m {
		if strings.HasPrefix(k, "@") {
			delete(m, k)
		}
	}
	return m, true
}

func stringProp(w http.ResponseWriter, m map[string]json.RawMessage, key string, allowed []string) (string, bool) {
	raw, ok := m[key]
	if !ok {
		return "", true
	}
	var v string
	if err := json.Unmarshal(raw, &v); err != nil {
		writeError(w, http.StatusBadRequest, msgPropertyValueType, fmt.Sprintf("The value %s for the property %s is of a different type than the property can accept.", raw, key), "")
		return "", false
	}
	if !slices.Contains(allowed, v) {
		writeError(w, http.StatusBadRequest, msgPropertyValueNotInList, fmt.Sprintf("The value %q for the property %s is not in the list of acceptable values.", v, key), "Use one of: "+strings.Join(allowed, ", "))
		return "", false
	}
	return v, true
}

func (s *Service) patchSystem(w http.ResponseWriter, r *http.Request, args []string) {
	m, ok := readJSON(w, r)
	if !ok {
		return
	}
	for k := range m {
		if k != "Boot" {
			writeError(w, http.StatusBadRequest, msgPropertyUnknown, fmt.Sprintf("The property %s is not in the list of valid properties for the resource.", k), "Only Boot can be patched.")
			return
		}
	}
	rawBoot, ok := m["Boot"]
	if !ok {
		writeError(w, http.StatusBadRequest, msgGeneralError, "The request body has no Boot property.", "PATCH {\"Boot\":{...}}.")
		return
	}
	var boot map[string]json.RawMessage
	if err := json.Unmarshal(rawBoot, &boot); err != nil || boot == nil {
		writeError(w, http.StatusBadRequest, msgPropertyValueType, "The property Boot must be an object.", "")
		return
	}
	for k := range boot {
		switch k {
		case "BootSourceOverrideTarget", "BootSourceOverrideEnabled", "BootSourceOverrideMode":
		default:
			if !strings.HasPrefix(k, "@") && !strings.Contains(k, "@Redfish.") {
				writeError(w, http.StatusBadRequest, msgPropertyUnknown, fmt.Sprintf("The property Boot/%s is not in the list of valid properties for the resource.", k), "")
				return
			}
		}
	}
	target, ok := stringProp(w, boot, "BootSourceOverrideTarget", BootTargets)
	if !ok {
		return
	}
	enabled, ok := stringProp(w, boot, "BootSourceOverrideEnabled", []string{BootOnce, BootContinuous, BootDisabled})
	if !ok {
		return
	}
	mode, ok := stringProp(w, boot, "BootSourceOverrideMode", []string{BootModeUEFI, BootModeLegacy})
	if !ok {
		return
	}
	sys, err := s.sys.GetSystem(r.Context(), args[0])
	if err != nil {
		s.systemErr(w, r, args[0], err)
		return
	}
	target = orDefault(target, orDefault(sys.Boot.Target, "None"))
	enabled = orDefault(enabled, orDefault(sys.Boot.Enabled, BootDisabled))
	mode = orDefault(mode, orDefault(sys.Boot.Mode, BootModeUEFI))
	if err := s.ctl.SetBoot(r.Context(), sys.Name, target, enabled, mode); err != nil {
		s.systemErr(w, r, sys.Name, err)
		return
	}
	s.log.Info("redfish boot override", "system", sys.Name, "target", target, "enabled", enabled, "mode", mode)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) reset(w http.ResponseWriter, r *http.Request, args []string) {
	m, ok := readJSON(w, r)
	if !ok {
		return
	}
	raw, ok := m["ResetType"]
	if !ok {
		writeError(w, http.StatusBadRequest, msgActionParamMissing, "The action ComputerSystem.Reset requires the parameter ResetType to be present in the request body.", "Supply ResetType: "+strings.Join(ResetTypes, ", "))
		return
	}
	var rt string
	if err := json.Unmarshal(raw, &rt); err != nil || !slices.Contains(ResetTypes, rt) {
		writeError(w, http.StatusBadRequest, msgActionParamNotSupp, fmt.Sprintf("The parameter ResetType with the value %s for the action ComputerSystem.Reset is not supported.", raw), "Use one of: "+strings.Join(ResetTypes, ", "))
		return
	}
	for k := range m {
		if k != "ResetType" {
			writeError(w, http.StatusBadRequest, msgActionParamNotSupp, fmt.Sprintf("The parameter %s for the action ComputerSystem.Reset is not supported.", k), "")
			return
		}
	}
	sys, err := s.sys.GetSystem(r.Context(), args[0])
	if err != nil {
		s.systemErr(w, r, args[0], err)
		return
	}
	if err := s.ctl.Reset(r.Context(), sys.Name, rt); err != nil {
		s.systemErr(w, r, sys.Name, err)
		return
	}
	s.log.Info("redfish reset", "system", sys.Name, "type", rt)
	w.WriteHeader(http.StatusNoContent)
}

func (s *Service) sessionService(w http.ResponseWriter, r *http.Request, _ []string) {
	writeJSON(w, http.StatusOK, obj{
		"@odata.context": v1 + "/$metadata#SessionService.SessionService",
		"@odata.id":      v1 + "/SessionService", "@odata.type": "#SessionService.v1_1_8.SessionService",
		"Id": "SessionService", "Name": "Session Service", "ServiceEnabled": true,
		"SessionTimeout": int(s.cfg.SessionTimeout.Seconds()),
		"Status":         obj{"State": "Enabled", "Health": "OK"},
		"Sessions":       link(v1 + "/SessionService/Sessions"),
	})
}

func sessionURI(id string) string { return v1 + "/SessionService/Sessions/" + id }

func sessionBody(se session) obj {
	return obj{
		"@odata.context": v1 + "/$metadata#Session.Session",
		"@odata.id":      sessionURI(se.id), "@odata.type": "#Session.v1_3_0.Session",
		"Id": se.id, "Name": "User Session", "UserName": se.user,
	}
}

func (s *Service) listSessions(w http.ResponseWriter, r *http.Request, _ []string) {
	var paths []string
	alive := map[string]bool{} // per credential, asked once
	for _, se := range s.sessions.list() {
		ok, asked := alive[se.credential]
		if !asked {
			ok = s.sessionAlive(r.Context(), se)
			alive[se.credential] = ok
		}
		if ok {
			paths = append(paths, sessionURI(se.id))
		}
	}
	sort.Strings(paths)
	writeJSON(w, http.StatusOK, collection(v1+"/SessionService/Sessions", "#SessionCollection.SessionCollection", "Session Collection", paths))
}

func (s *Service) login(w http.ResponseWriter, r *http.Request, _ []string) {
	m, ok := readJSON(w, r)
	if !ok {
		return
	}
	var user, pass string
	uerr := json.Unmarshal(m["UserName"], &user)
	perr := json.Unmarshal(m["Password"], &pass)
	if uerr != nil || perr != nil || user == "" {
		writeError(w, http.StatusBadRequest, msgActionParamMissing, "Creating a session requires the string properties UserName and Password.", "")
		return
	}
	var cred string
	if s.auth != nil {
		cred, ok = s.auth.CheckPassword(r.Context(), user, pass)
	}
	if s.auth == nil || !ok {
		writeError(w, http.StatusUnauthorized, msgNoValidSession, "Invalid user name or password.", "")
		return
	}
	se := s.sessions.create(user, cred)
	w.Header().Set("X-Auth-Token", se.token)
	w.Header().Set("Location", sessionURI(se.id))
	writeJSON(w, http.StatusCreated, sessionBody(se))
}

func (s *Service) getSession(w http.ResponseWriter, r *http.Request, args []string) {
	se, ok := s.sessions.get(args[0])
	if ok && !s.sessionAlive(r.Context(), se) {
		ok = false
	}
	if !ok {
		writeError(w, http.StatusNotFound, msgResourceNotFound, "The session "+args[0]+" was not found.", "")
		return
	}
	writeJSON(w, http.StatusOK, sessionBody(se))
}

func (s *Service) logout(w http.ResponseWriter, r *http.Request, args []string) {
	if !s.sessions.remove(args[0]) {
		writeError(w, http.StatusNotFound, msgResourceNotFound, "The session "+args[0]+" was not found.", "")
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
