package bmcsim

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
)

const (
	rootPath     = "/redfish/v1"
	systemPath   = rootPath + "/Systems/1"
	managerPath  = rootPath + "/Managers/1"
	mediaPath    = managerPath + "/VirtualMedia/CD1"
	sessionsPath = rootPath + "/SessionService/Sessions"
)

type odata = map[string]any

func link(p string) odata { return odata{"@odata.id": p} }

func collection(id, typ, name string, members ...string) odata {
	m := []odata{}
	for _, p := range members {
		m = append(m, link(p))
	}
	return odata{"@odata.id": id, "@odata.type": typ, "Name": name, "Members": m, "Members@odata.count": len(m)}
}

func (b *BMC) routes() {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /redfish", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, odata{"v1": rootPath + "/"})
	})
	mux.HandleFunc("GET "+rootPath, b.serviceRoot)
	mux.HandleFunc("GET "+rootPath+"/Systems", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, collection(rootPath+"/Systems", "#ComputerSystemCollection.ComputerSystemCollection", "Computer System Collection", systemPath))
	})
	mux.HandleFunc("GET "+systemPath, b.system)
	mux.HandleFunc("PATCH "+systemPath, b.patchSystem)
	mux.HandleFunc("POST "+systemPath+"/Actions/ComputerSystem.Reset", b.resetAction)
	mux.HandleFunc("GET "+rootPath+"/Managers", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, collection(rootPath+"/Managers", "#ManagerCollection.ManagerCollection", "Manager Collection", managerPath))
	})
	mux.HandleFunc("GET "+managerPath, b.manager)
	mux.HandleFunc("GET "+managerPath+"/VirtualMedia", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, collection(managerPath+"/VirtualMedia", "#VirtualMediaCollection.VirtualMediaCollection", "Virtual Media Services", mediaPath))
	})
	mux.HandleFunc("GET "+mediaPath, b.media)
	mux.HandleFunc("POST "+mediaPath+"/Actions/VirtualMedia.InsertMedia", b.insertMedia)
	mux.HandleFunc("POST "+mediaPath+"/Actions/VirtualMedia.EjectMedia", b.ejectMedia)
	mux.HandleFunc("GET "+rootPath+"/SessionService", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, odata{
			"@odata.id": rootPath + "/SessionService", "@odata.type": "#SessionService.v1_1_8.SessionService",
			"Id": "SessionService", "Name": "Session Service", "ServiceEnabled": true, "SessionTimeout": 1800,
			"Sessions": link(sessionsPath),
		})
	})
	mux.HandleFunc("GET "+sessionsPath, b.listSessions)
	mux.HandleFunc("POST "+sessionsPath, b.createSession)
	mux.HandleFunc("GET "+sessionsPath+"/{id}", b.getSession)
	mux.HandleFunc("DELETE "+sessionsPath+"/{id}", b.deleteSession)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "no resource at "+r.URL.Path)
	})
	b.mux = mux
}

func (b *BMC) serviceRoot(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, odata{
		"@odata.id": rootPath + "/", "@odata.type": "#ServiceRoot.v1_11_0.ServiceRoot",
		"Id": "RootService", "Name": "bmcsim Redfish Service", "RedfishVersion": "1.11.0", "UUID": b.cfg.UUID,
		"Systems": link(rootPath + "/Systems"), "Managers": link(rootPath + "/Managers"),
		"SessionService": link(rootPath + "/SessionService"),
		"Links":          odata{"Sessions": link(sessionsPath)},
	})
}

func (b *BMC) system(w http.ResponseWriter, r *http.Request) {
	b.st.mu.Lock()
	power, boot := "Off", b.st.boot
	if b.st.power {
		power = "On"
	}
	b.st.mu.Unlock()
	writeJSON(w, http.StatusOK, odata{
		"@odata.id": systemPath, "@odata.type": "#ComputerSystem.v1_13_0.ComputerSystem",
		"Id": "1", "Name": "System", "SystemType": "Physical", "UUID": b.cfg.UUID, "SerialNumber": b.cfg.Serial,
		"Manufacturer": "metal", "Model": "bmcsim", "PowerState": power,
		"Status": odata{"State": "Enabled", "Health": "OK"},
		"Boot": odata{
			"BootSourceOverrideTarget":                         boot.Target,
			"BootSourceOverrideEnabled":                        boot.Enabled,
			"BootSourceOverrideMode":                           boot.Mode,
			"BootSourceOverrideTarget@Redfish.AllowableValues": BootTargets,
		},
		"Actions": odata{"#ComputerSystem.Reset": odata{
			"target":                            systemPath + "/Actions/ComputerSystem.Reset",
			"ResetType@Redfish.AllowableValues": ResetTypes,
		}},
		"Links": odata{"ManagedBy": []odata{link(managerPath)}},
	})
}

func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err == nil {
		err = json.Unmarshal(body, v)
	}
	if err != nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.MalformedJSON", "malformed JSON body: "+err.Error())
		return false
	}
	return true
}

func (b *BMC) patchSystem(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Boot *struct {
			BootSourceOverrideTarget  string
			BootSourceOverrideEnabled string
			BootSourceOverrideMode    string
		}
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Boot == nil {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyUnknown", "only Boot can be patched")
		return
	}
	nb := req.Boot
	if nb.BootSourceOverrideTarget != "" && !slices.Contains(BootTargets, nb.BootSourceOverrideTarget) {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueNotInList", fmt.Sprintf("BootSourceOverrideTarget %q is not allowed", nb.BootSourceOverrideTarget))
		return
	}
	if e := nb.BootSourceOverrideEnabled; e != "" && e != "Once" && e != "Continuous" && e != "Disabled" {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueNotInList", fmt.Sprintf("BootSourceOverrideEnabled %q is not allowed", e))
		return
	}
	if m := nb.BootSourceOverrideMode; m != "" && m != "UEFI" && m != "Legacy" {
		writeError(w, http.StatusBadRequest, "Base.1.8.PropertyValueNotInList", fmt.Sprintf("BootSourceOverrideMode %q is not allowed", m))
		return
	}
	b.st.mu.Lock()
	if nb.BootSourceOverrideTarget != "" {
		b.st.boot.Target = nb.BootSourceOverrideTarget
	}
	if nb.BootSourceOverrideEnabled != "" {
		b.st.boot.Enabled = nb.BootSourceOverrideEnabled
	}
	if nb.BootSourceOverrideMode != "" {
		b.st.boot.Mode = nb.BootSourceOverrideMode
	}
	b.st.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (b *BMC) resetAction(w http.ResponseWriter, r *http.Request) {
	var req struct{ ResetType string }
	if !decode(w, r, &req) {
		return
	}
	if !slices.Contains(ResetTypes, req.ResetType) {
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterNotSupported", fmt.Sprintf("ResetType %q is not supported", req.ResetType))
		return
	}
	if err := b.st.reset(req.ResetType); err != nil {
		writeError(w, http.StatusConflict, "Base.1.8.ActionNotSupported", err.Error())
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (b *BMC) manager(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, odata{
		"@odata.id": managerPath, "@odata.type": "#Manager.v1_10_0.Manager",
		"Id": "1", "Name": "Manager", "ManagerType": "BMC", "FirmwareVersion": "bmcsim-1",
		"Status":       odata{"State": "Enabled", "Health": "OK"},
		"VirtualMedia": link(managerPath + "/VirtualMedia"),
		"Links":        odata{"ManagerForServers": []odata{link(systemPath)}, "ManagerForServers@odata.count": 1},
	})
}

func (b *BMC) media(w http.ResponseWriter, r *http.Request) {
	m := b.Media()
	var image any
	if m.Image != "" {
		image = m.Image
	}
	writeJSON(w, http.StatusOK, odata{
		"@odata.id": mediaPath, "@odata.type": "#VirtualMedia.v1_3_0.VirtualMedia",
		"Id": "CD1", "Name": "Virtual CD", "MediaTypes": []string{"CD", "DVD"},
		"Image": image, "Inserted": m.Inserted, "WriteProtected": true, "ConnectedVia": "URI",
		"Actions": odata{
			"#VirtualMedia.InsertMedia": odata{"target": mediaPath + "/Actions/VirtualMedia.InsertMedia"},
			"#VirtualMedia.EjectMedia":  odata{"target": mediaPath + "/Actions/VirtualMedia.EjectMedia"},
		},
	})
}

func (b *BMC) insertMedia(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Image    string
		Inserted *bool
	}
	if !decode(w, r, &req) {
		return
	}
	if req.Image == "" {
		writeError(w, http.StatusBadRequest, "Base.1.8.ActionParameterMissing", "Image is required")
		return
	}
	b.st.mu.Lock()
	defer b.st.mu.Unlock()
	if b.st.media.Inserted {
		writeError(w, http.StatusConflict, "Base.1.8.ResourceInUse", "media already inserted: eject first")
		return
	}
	b.st.media = Media{Image: req.Image, Inserted: req.Inserted == nil || *req.Inserted}
	w.WriteHeader(http.StatusNoContent)
}

func (b *BMC) ejectMedia(w http.ResponseWriter, r *http.Request) {
	b.st.mu.Lock()
	b.st.media = Media{}
	b.st.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (b *BMC) listSessions(w http.ResponseWriter, r *http.Request) {
	b.smu.Lock()
	var ids []string
	for id := range b.sessions {
		ids = append(ids, sessionsPath+"/"+id)
	}
	b.smu.Unlock()
	slices.Sort(ids)
	writeJSON(w, http.StatusOK, collection(sessionsPath, "#SessionCollection.SessionCollection", "Sessions", ids...))
}

func (b *BMC) createSession(w http.ResponseWriter, r *http.Request) {
	var req struct{ UserName, Password string }
	if !decode(w, r, &req) {
		return
	}
	if !b.credentialsOK(req.UserName, req.Password) {
		writeError(w, http.StatusUnauthorized, "Base.1.8.InsufficientPrivilege", "invalid user name or password")
		return
	}
	b.smu.Lock()
	b.nextSess++
	id := strconv.Itoa(b.nextSess)
	tok := newToken()
	b.sessions[id] = tok
	b.smu.Unlock()
	w.Header().Set("X-Auth-Token", tok)
	w.Header().Set("Location", sessionsPath+"/"+id)
	writeJSON(w, http.StatusCreated, sessionBody(id, req.UserName))
}

func sessionBody(id, user string) odata {
	return odata{"@odata.id": sessionsPath + "/" + id, "@odata.type": "#Session.v1_3_0.Session", "Id": id, "Name": "Session " + id, "UserName": user}
}

func (b *BMC) getSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b.smu.Lock()
	_, ok := b.sessions[id]
	b.smu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "no session "+id)
		return
	}
	writeJSON(w, http.StatusOK, sessionBody(id, b.cfg.User))
}

func (b *BMC) deleteSession(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	b.smu.Lock()
	_, ok := b.sessions[id]
	delete(b.sessions, id)
	b.smu.Unlock()
	if !ok {
		writeError(w, http.StatusNotFound, "Base.1.8.ResourceMissingAtURI", "no session "+id)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}
