import { createApp } from 'vue';
import { createRouter, createWebHistory } from 'vue-router';
import { createAuthPlugin } from '@sekisho/client/vue';
import App from './App.vue';
import Home from './views/Home.vue';
import Office from './views/Office.vue';
import Shop from './views/Shop.vue';
import Dashboard from './views/Dashboard.vue';
import Reports from './views/Reports.vue';
import Security from './views/Security.vue';
import { office, officeUserNow, shop } from './auth';
import './style.css';

declare module 'vue-router' {
  interface RouteMeta {
    /** The permission a screen needs (checked against the office login). */
    perm?: string;
  }
}

const router = createRouter({
  history: createWebHistory(),
  routes: [
    { path: '/', component: Home },
    { path: '/office', component: Office },
    { path: '/shop', component: Shop },
    { path: '/dashboard', component: Dashboard },
    { path: '/reports', component: Reports, meta: { perm: 'shop.view_report' } },
    { path: '/security', component: Security },
  ],
});

// Before a screen that needs a permission is entered, read the user's permissions afresh from
// `GET /api/auth/me/`; the screen then shows a refusal instead of itself to a user without it.
// This is only for the user's benefit: the API route behind the screen checks the same
// permission, and that check is the protection.
router.beforeEach(async (to) => {
  if (to.meta.perm) await officeUserNow();
});

// Each plugin restores its client's login at startup; `useAuth()` without an argument gets
// the shop client, `useAuth(office)` the other one.
createApp(App).use(createAuthPlugin(office)).use(createAuthPlugin(shop)).use(router).mount('#app');
