// Package deploy holds what runs wirecat elsewhere: the release image's
// Dockerfile and the Kubernetes manifests of a sharded fleet. Its tests
// check that the manifests agree with themselves, with goreleaser.yaml and
// with wirecat's flags, and run the manifests' own command lines on this
// machine the way the kubelet would.
package deploy

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wirecat-dev/wirecat/internal/e2e"
	"gopkg.in/yaml.v3"
)

// object is one Kubernetes object, as far as these tests read it.
type object struct {
	APIVersion string `yaml:"apiVersion"`
	Kind       string `yaml:"kind"`
	Metadata   struct{ Name string }
	Data       map[string]string `yaml:"data"`
	Spec       jobSpec           `yaml:"spec"`
}

type jobSpec struct {
	CompletionMode string   `yaml:"completionMode"`
	Completions    *int     `yaml:"completions"`
	Parallelism    *int     `yaml:"parallelism"`
	BackoffLimit   *int     `yaml:"backoffLimit"`
	AccessModes    []string `yaml:"accessModes"`
	Template       struct {
		Spec podSpec `yaml:"spec"`
	} `yaml:"template"`
}

type podSpec struct {
	RestartPolicy   string `yaml:"restartPolicy"`
	SecurityContext struct {
		RunAsUser *int `yaml:"runAsUser"`
		FSGroup   *int `yaml:"fsGroup"`
	} `yaml:"securityContext"`
	Containers []container `yaml:"containers"`
	Volumes    []volume    `yaml:"volumes"`
}

type container struct {
	Name    string
	Image   string
	Command []string
	Args    []string
	Env     []struct {
		Name      string
		Value     string
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
		} `yaml:"valueFrom"`
	}
	VolumeMounts []struct {
		Name      string
		MountPath string `yaml:"mountPath"`
		ReadOnly  bool   `yaml:"readOnly"`
	} `yaml:"volumeMounts"`
}

type volume struct {
	Name      string
	ConfigMap *struct{ Name string } `yaml:"configMap"`
	PVC       *struct {
		ClaimName string `yaml:"claimName"`
	} `yaml:"persistentVolumeClaim"`
}

// readObjects reads every document of a manifest file.
func readObjects(t *testing.T, path string) []object {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out []object
	dec := yaml.NewDecoder(bytes.NewReader(b))
	for {
		var o object
		err := dec.Decode(&o)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		if o.APIVersion == "" || o.Kind == "" || o.Metadata.Name == "" {
			t.Fatalf("%s: an object without apiVersion, kind or name: %+v", path, o)
		}
		out = append(out, o)
	}
	return out
}

// manifests is what fleet.yaml and merge.yaml hold.
type manifests struct {
	configMap, pvc, fleet, merge object
}

func loadManifests(t *testing.T) manifests {
	t.Helper()
	var m manifests
	kinds := map[string]*object{"ConfigMap": &m.configMap, "PersistentVolumeClaim": &m.pvc, "Job": &m.fleet}
	for _, o := range readObjects(t, "kubernetes/fleet.yaml") {
		p, ok := kinds[o.Kind]
		if !ok || p.Kind != "" {
			t.Fatalf("fleet.yaml: an unexpected %s %q (want one ConfigMap, PersistentVolumeClaim and Job)", o.Kind, o.Metadata.Name)
		}
		*p = o
	}
	for kind, p := range kinds {
		if p.Kind == "" {
			t.Fatalf("fleet.yaml has no %s", kind)
		}
	}
	merge := readObjects(t, "kubernetes/merge.yaml")
	if len(merge) != 1 || merge[0].Kind != "Job" {
		t.Fatalf("merge.yaml: want one Job, have %d objects", len(merge))
	}
	m.merge = merge[0]
	return m
}

// show prints an optional number.
func show(n *int) string {
	if n == nil {
		return "(none)"
	}
	return strconv.Itoa(*n)
}

// flag is the value of --name=VALUE in args ("" and false when absent).
func flag(args []string, name string) (string, bool) {
	for _, a := range args {
		if v, ok := strings.CutPrefix(a, "--"+name+"="); ok {
			return v, true
		}
	}
	return "", false
}

// only is the one container of a Job.
func only(t *testing.T, o object) container {
	t.Helper()
	cs := o.Spec.Template.Spec.Containers
	if len(cs) != 1 {
		t.Fatalf("job %s has %d containers, want 1", o.Metadata.Name, len(cs))
	}
	return cs[0]
}

// mountOf is the volume mounted at the directory that holds path.
func mountOf(t *testing.T, o object, path string) volume {
	t.Helper()
	c := only(t, o)
	for _, m := range c.VolumeMounts {
		if strings.HasPrefix(path, strings.TrimSuffix(m.MountPath, "/")+"/") {
			for _, v := range o.Spec.Template.Spec.Volumes {
				if v.Name == m.Name {
					return v
				}
			}
			t.Fatalf("job %s mounts %q, which is no volume of its pod", o.Metadata.Name, m.Name)
		}
	}
	t.Fatalf("job %s: %s is on no mounted volume", o.Metadata.Name, path)
	return volume{}
}

var shardArg = regexp.MustCompile(`^auto/(\d+)$`)

// The fleet is an Indexed Job of N pods all at once, each a shard of the
// same N, each writing its summary where the merge Job reads N of them.
func TestFleetManifest(t *testing.T) {
	m := loadManifests(t)
	job := m.fleet.Spec
	if job.CompletionMode != "Indexed" {
		t.Errorf("completionMode %q, want Indexed (it gives each pod JOB_COMPLETION_INDEX)", job.CompletionMode)
	}
	if job.Completions == nil || job.Parallelism == nil || *job.Completions != *job.Parallelism || *job.Completions < 1 {
		t.Fatalf("completions %s and parallelism %s: want the same N, the shards all at once", show(job.Completions), show(job.Parallelism))
	}
	n := *job.Completions
	if job.BackoffLimit == nil || *job.BackoffLimit != 0 {
		t.Errorf("backoffLimit %s: a shard run again would run its devices twice; want 0", show(job.BackoffLimit))
	}
	pod := job.Template.Spec
	if pod.RestartPolicy != "Never" {
		t.Errorf("restartPolicy %q, want Never (a restarted shard starts late and counts twice)", pod.RestartPolicy)
	}
	c := only(t, m.fleet)
	if len(c.Command) > 0 {
		t.Errorf("command %q replaces the image's /wirecat entrypoint", c.Command)
	}
	if len(c.Args) < 2 || c.Args[0] != "simulate" {
		t.Fatalf("args %q: want simulate SCRIPT ...", c.Args)
	}
	shard, _ := flag(c.Args, "shard")
	sm := shardArg.FindStringSubmatch(shard)
	if sm == nil || sm[1] != strconv.Itoa(n) {
		t.Errorf("--shard=%q, want auto/%d (completions)", shard, n)
	}
	count, _ := flag(c.Args, "count")
	if cn, err := strconv.Atoi(count); err != nil || cn < n {
		t.Errorf("--count=%q: want the whole fleet, at least one device a shard", count)
	}
	for _, f := range []string{"start-at", "connect", "duration"} {
		if _, ok := flag(c.Args, f); !ok {
			t.Errorf("no --%s: the shards would not start together, have no target or never write their summaries", f)
		}
	}
	// K comes from the pod's index, and $(JOB_COMPLETION_INDEX) in the
	// summary's name needs the variable declared in the container.
	declared := false
	for _, e := range c.Env {
		if e.Name == "JOB_COMPLETION_INDEX" && e.ValueFrom != nil && e.ValueFrom.FieldRef != nil &&
			e.ValueFrom.FieldRef.FieldPath == "metadata.annotations['batch.kubernetes.io/job-completion-index']" {
			declared = true
		}
	}
	if !declared {
		t.Errorf("JOB_COMPLETION_INDEX is not declared from the pod's job-completion-index annotation")
	}
	summary, _ := flag(c.Args, "summary")
	if !strings.Contains(summary, "$(JOB_COMPLETION_INDEX)") {
		t.Errorf("--summary=%q: each shard needs its own file, named by $(JOB_COMPLETION_INDEX)", summary)
	}
	// The script is the ConfigMap's, mounted where args say.
	vol := mountOf(t, m.fleet, c.Args[1])
	if vol.ConfigMap == nil || vol.ConfigMap.Name != m.configMap.Metadata.Name {
		t.Errorf("the script %s is not on the ConfigMap %q", c.Args[1], m.configMap.Metadata.Name)
	} else if _, ok := m.configMap.Data[filepath.Base(c.Args[1])]; !ok {
		t.Errorf("the ConfigMap has no %s", filepath.Base(c.Args[1]))
	}
	// Summaries go to the claim the merge Job reads.
	out := mountOf(t, m.fleet, summary)
	if out.PVC == nil || out.PVC.ClaimName != m.pvc.Metadata.Name {
		t.Fatalf("--summary=%s is not on the claim %q", summary, m.pvc.Metadata.Name)
	}
	if pod.SecurityContext.FSGroup == nil {
		t.Errorf("no fsGroup: the image's user could not write %s", summary)
	}
	mc := only(t, m.merge)
	if len(mc.Args) == 0 || mc.Args[0] != "summary" {
		t.Fatalf("merge args %q: want summary FILE...", mc.Args)
	}
	var files []string
	for _, a := range mc.Args[1:] {
		if !strings.HasPrefix(a, "-") {
			files = append(files, a)
		}
	}
	var want []string
	for k := range n {
		want = append(want, strings.ReplaceAll(summary, "$(JOB_COMPLETION_INDEX)", strconv.Itoa(k)))
	}
	if fmt.Sprint(files) != fmt.Sprint(want) {
		t.Errorf("the merge Job reads %q, the %d shards write %q", files, n, want)
	}
	if v := mountOf(t, m.merge, want[0]); v.PVC == nil || v.PVC.ClaimName != m.pvc.Metadata.Name {
		t.Errorf("the merge Job does not read the claim %q", m.pvc.Metadata.Name)
	}
	if m.merge.Spec.Template.Spec.RestartPolicy != "Never" {
		t.Errorf("merge restartPolicy %q, want Never", m.merge.Spec.Template.Spec.RestartPolicy)
	}
	if !strings.Contains(strings.Join(m.pvc.Spec.AccessModes, " "), "ReadWriteMany") {
		t.Errorf("the claim's access modes %q: shards on several nodes need ReadWriteMany", m.pvc.Spec.AccessModes)
	}
}

// goreleaserDocker is the part of goreleaser.yaml these tests read.
type goreleaserDocker struct {
	Builds []struct {
		ID     string
		Binary string
		Goos   []string
		Goarch []string
	}
	DockersV2 []struct {
		ID         string
		IDs        []string
		Dockerfile string
		Images     []string
		Tags       []string
		Platforms  []string
	} `yaml:"dockers_v2"`
}

// The manifests run the image goreleaser builds, and that image is the
// static binary FROM scratch with it as the entrypoint.
func TestImageMatchesGoreleaser(t *testing.T) {
	b, err := os.ReadFile("../goreleaser.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var g goreleaserDocker
	if err := yaml.Unmarshal(b, &g); err != nil {
		t.Fatal(err)
	}
	if len(g.DockersV2) != 1 || len(g.DockersV2[0].Images) == 0 {
		t.Fatalf("goreleaser.yaml: want one dockers_v2 entry with an image, have %+v", g.DockersV2)
	}
	d := g.DockersV2[0]
	m := loadManifests(t)
	for _, job := range []object{m.fleet, m.merge} {
		image := only(t, job).Image
		repo, tag, _ := strings.Cut(image, ":")
		if repo != d.Images[0] {
			t.Errorf("job %s runs %s, goreleaser builds %s", job.Metadata.Name, repo, d.Images[0])
		}
		tagged := false
		for _, tt := range d.Tags {
			tagged = tagged || strings.Contains(tt, tag)
		}
		if tag == "" || !tagged {
			t.Errorf("job %s: tag %q is none of goreleaser's %q", job.Metadata.Name, tag, d.Tags)
		}
	}
	df, err := os.ReadFile(filepath.Join("..", d.Dockerfile))
	if err != nil {
		t.Fatalf("dockers_v2's dockerfile: %v", err)
	}
	var from, entry []string
	for _, l := range strings.Split(string(df), "\n") {
		switch f := strings.Fields(l); {
		case len(f) > 1 && f[0] == "FROM":
			from = append(from, f[1])
		case len(f) > 1 && f[0] == "ENTRYPOINT":
			entry = append(entry, strings.Join(f[1:], " "))
		}
	}
	if fmt.Sprint(from) != "[scratch]" {
		t.Errorf("%s builds FROM %q, want scratch alone", d.Dockerfile, from)
	}
	binary := ""
	for _, b := range g.Builds {
		for _, id := range d.IDs {
			if b.ID == id {
				if binary != "" && b.Binary != binary {
					t.Errorf("builds %v name their binaries differently", d.IDs)
				}
				binary = b.Binary
			}
		}
	}
	if binary == "" {
		t.Fatalf("dockers_v2 ids %v match no build", d.IDs)
	}
	if !strings.Contains(string(df), "COPY $TARGETPLATFORM/"+binary+" /"+binary) {
		t.Errorf("%s does not copy the platform's %s (goreleaser puts it at $TARGETPLATFORM/%s)", d.Dockerfile, binary, binary)
	}
	if fmt.Sprint(entry) != fmt.Sprintf(`[["/%s"]]`, binary) {
		t.Errorf("ENTRYPOINT %q, want [\"/%s\"] (the manifests give only args)", entry, binary)
	}
	if len(d.Platforms) == 0 {
		t.Errorf("no platforms")
	}
	for _, p := range d.Platforms {
		if !strings.HasPrefix(p, "linux/") {
			t.Errorf("platform %s: FROM scratch images are linux", p)
		}
	}
}

// kubeVar is a $(NAME) reference in a container's args, which the kubelet
// expands from the container's env ($$ escapes a $).
var kubeVar = regexp.MustCompile(`\$\$|\$\(([A-Za-z_][A-Za-z0-9_]*)\)`)

func expandKube(s string, env map[string]string) string {
	return kubeVar.ReplaceAllStringFunc(s, func(m string) string {
		if m == "$$" {
			return "$"
		}
		if v, ok := env[m[2:len(m)-1]]; ok {
			return v
		}
		return m // undefined: left as written, as the kubelet does
	})
}

// local is a pod's file system here: each volume mount is a directory.
type local map[string]string // mount path → directory

// arg maps a path, or the path of --flag=PATH, onto the mounts here.
func (l local) arg(a string) string {
	if name, v, ok := strings.Cut(a, "="); ok && strings.HasPrefix(name, "--") {
		return name + "=" + l.path(v)
	}
	return l.path(a)
}

func (l local) path(s string) string {
	for mount, dir := range l {
		if rest, ok := strings.CutPrefix(s, strings.TrimSuffix(mount, "/")+"/"); ok {
			return filepath.Join(dir, rest)
		}
	}
	return s
}

// podHere lays out a Job's volumes under dir: a ConfigMap's data as files,
// a claim as a directory that every pod mounting it shares.
func podHere(t *testing.T, m manifests, job object, dir string) local {
	t.Helper()
	l := local{}
	c := only(t, job)
	for _, vm := range c.VolumeMounts {
		for _, v := range job.Spec.Template.Spec.Volumes {
			if v.Name != vm.Name {
				continue
			}
			switch {
			case v.ConfigMap != nil:
				d := filepath.Join(dir, "configmap-"+v.ConfigMap.Name)
				os.MkdirAll(d, 0o755)
				for k, data := range m.configMap.Data {
					if err := os.WriteFile(filepath.Join(d, k), []byte(data), 0o644); err != nil {
						t.Fatal(err)
					}
				}
				l[vm.MountPath] = d
			case v.PVC != nil:
				d := filepath.Join(dir, "claim-"+v.PVC.ClaimName)
				os.MkdirAll(d, 0o755)
				l[vm.MountPath] = d
			default:
				t.Fatalf("volume %s: neither a ConfigMap nor a claim", v.Name)
			}
		}
	}
	return l
}

// The manifests' own command lines run here as the kubelet would run them:
// the fleet Job's args for each index (env and $(...) expanded, volumes
// mapped onto directories), a fiftieth of the fleet's size and a few
// seconds long, against a backend that notes each device's id; then the
// merge Job's args on the summaries the shards wrote. The script is the
// ConfigMap's, as printed.
func TestManifestsRunHere(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs wirecat")
	}
	bin := buildWirecat(t)
	m := loadManifests(t)
	dir := t.TempDir()
	fleet := only(t, m.fleet)
	n := *m.fleet.Spec.Completions

	// The backend: one line "ID TEMP" a second from each device.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var mu sync.Mutex
	ids := map[int]int{}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				first := true
				sc := bufio.NewScanner(c)
				for sc.Scan() {
					f := strings.Fields(sc.Text())
					if len(f) != 2 {
						t.Errorf("the backend got %q, want ID TEMP", sc.Text())
						return
					}
					id, err := strconv.Atoi(f[0])
					if err != nil {
						t.Errorf("the backend got %q, want ID TEMP", sc.Text())
						return
					}
					if first {
						mu.Lock()
						ids[id]++
						mu.Unlock()
						first = false
					}
				}
			}()
		}
	}()

	count := 10 * n
	overrides := map[string]string{
		"count": strconv.Itoa(count), "ramp": "1s", "duration": "3s",
		"start-at": time.Now().Add(1500 * time.Millisecond).UTC().Format(time.RFC3339Nano),
		"connect":  ln.Addr().String(),
	}
	var procs []*exec.Cmd
	var stderrs []*bytes.Buffer
	pod := podHere(t, m, m.fleet, dir) // the same volumes in every pod
	for k := range n {
		env := map[string]string{"JOB_COMPLETION_INDEX": strconv.Itoa(k)} // the annotation's value in pod K
		var args []string
		for _, a := range fleet.Args {
			a = pod.arg(expandKube(a, env))
			if name, _, ok := strings.Cut(strings.TrimPrefix(a, "--"), "="); ok && overrides[name] != "" && strings.HasPrefix(a, "--") {
				a = "--" + name + "=" + overrides[name]
			}
			args = append(args, a)
		}
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "JOB_COMPLETION_INDEX="+strconv.Itoa(k))
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
		procs, stderrs = append(procs, cmd), append(stderrs, &stderr)
	}
	for k, cmd := range procs {
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("pod %d: %v: %s", k, err, stderrs[k])
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("pod %d still running after 30s: %s", k, stderrs[k])
		}
		if want := fmt.Sprintf("shard %d/%d: %d devices started", k, n, count/n); !strings.Contains(stderrs[k].String(), want) {
			t.Errorf("pod %d: %q, want %q", k, stderrs[k], want)
		}
	}
	mu.Lock()
	var wrong []string
	for id := 1; id <= count; id++ {
		if ids[id] != 1 {
			wrong = append(wrong, fmt.Sprintf("%d:%d", id, ids[id]))
		}
	}
	if len(wrong) > 0 || len(ids) != count {
		t.Errorf("%d devices reached the backend, want %d; device:times wrong %v", len(ids), count, wrong)
		for k := range n {
			t.Logf("pod %d: %s", k, stderrs[k])
		}
	}
	mu.Unlock()

	for k := range n {
		if _, err := os.Stat(filepath.Join(dir, "claim-"+m.pvc.Metadata.Name, fmt.Sprintf("summary-%d.json", k))); err != nil {
			t.Errorf("pod %d's summary: %v", k, err)
		}
	}
	// The merge Job, as written: every threshold met, exit 0.
	merge := only(t, m.merge)
	pod = podHere(t, m, m.merge, dir)
	var args []string
	for _, a := range merge.Args {
		args = append(args, pod.arg(a))
	}
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("the merge Job: %v\n%s", err, out)
	}
	// And its merged figures are the fleet's.
	js, err := exec.Command(bin, append(args, "-o", "json")...).Output()
	if err != nil {
		t.Fatalf("the merge Job with -o json: %v", err)
	}
	var merged struct{ Counters map[string]int64 }
	if err := json.Unmarshal(js, &merged); err != nil {
		t.Fatalf("merged summary: %v\n%s", err, js)
	}
	if got := merged.Counters["devices.started"]; got != int64(count) {
		t.Errorf("the merged summary counts %d devices started, want %d:\n%s", got, count, out)
	}
}

var (
	buildOnce sync.Once
	buildErr  error
	cleanup   = func() {}
)

// buildWirecat builds the command once for the package's tests; TestMain
// removes it.
func buildWirecat(t *testing.T) string {
	t.Helper()
	buildOnce.Do(func() {
		c, err := e2e.Build("github.com/wirecat-dev/wirecat/cmd/wirecat", false)
		if buildErr = err; err == nil {
			cleanup = c
		}
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return e2e.Bin
}

func TestMain(m *testing.M) {
	code := m.Run()
	cleanup()
	os.Exit(code)
}
