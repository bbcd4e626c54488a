const $ = id => document.getElementById(id);
const tok = $('token');
// A link of the form /#token=metal_… stores the token and drops it from
// the address bar.
const fromHash = new URLSearchParams(location.hash.slice(1)).get('token');
if (fromHash) { localStorage.setItem('metal-token', fromHash); history.replaceState(null, '', location.pathname); }
tok.value = localStorage.getItem('metal-token') || '';
tok.addEventListener('change', () => { localStorage.setItem('metal-token', tok.value.trim()); refresh(); });
const esc = s => String(s ?? '').replace(/[&<>"']/g, c => ({'&':'&amp;','<':'&lt;','>':'&gt;','"':'&quot;',"'":'&#39;'}[c]));
async function api(path) {
  const r = await fetch('/api/v1' + path, {headers: {Authorization: 'Bearer ' + tok.value.trim()}});
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || r.statusText);
  return body;
}
function human(n) { const u = ['B','KiB','MiB','GiB','TiB']; let i = 0; while (n >= 1024 && i < u.length-1) { n /= 1024; i++; } return n.toFixed(i ? 1 : 0) + ' ' + u[i]; }
let since = 0;
async function refresh() {
  try {
    const ms = await api('/machines');
    $('count').textContent = '(' + ms.length + ')';
    $('machines').innerHTML = ms.map(m => `<tr><td>${esc(m.name)}</td><td><span class="state ${esc(m.state)}">${esc(m.state)}</span></td>` +
      `<td>${esc(m.power_state)}</td><td>${esc((m.macs||[]).join(', '))}</td><td>${esc([m.ip, m.ip6].filter(Boolean).join(', '))}</td>` +
      `<td>${esc(Object.entries(m.tags||{}).map(([k,v]) => k+'='+v).join(', '))}</td></tr>`).join('');
    const js = await api('/jobs?active=true');
    $('jobs').innerHTML = js.map(j => { const p = j.progress || {}; const pct = p.total ? Math.floor(100*p.bytes_written/p.total) : 0;
      return `<tr><td>${j.id}</td><td>${esc(j.machine)}</td><td>${esc(j.kind)}</td><td>${esc(j.phase)}</td>` +
        `<td>${p.total ? `<progress class="bar" max="100" value="${pct}"></progress> ${pct}% ${human(p.rate_bytes_per_sec||0)}/s` : ''}</td></tr>`; }).join('');
    // First load: the latest page (oldest first within it); then what is new.
    const evs = await api(since ? '/events?since=' + since + '&limit=500' : '/events?order=newest&limit=200');
    for (const e of evs) {
      since = e.id;
      const d = document.createElement('div');
      d.textContent = `${e.time.slice(11,19)} ${e.machine || e.mac || '-'} ${e.type} ${e.message || ''}`;
      $('events').prepend(d);
    }
    $('error').textContent = '';
  } catch (err) { $('error').textContent = err.message; }
}
refresh();
setInterval(refresh, 2000);
